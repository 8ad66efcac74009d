import io
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from collabvr import media
from collabvr.media import MediaError

H, W = 48, 64


def moving_square(n: int, height: int = H, width: int = W, colour=(220, 60, 40)) -> np.ndarray:
    """Smooth synthetic clip: a coloured square sliding across a gradient background."""
    ys, xs = np.mgrid[0:height, 0:width]
    background = np.stack(
        [40 + xs * 100 // width, 60 + ys * 100 // height, np.full_like(xs, 120)], axis=-1
    ).astype(np.uint8)
    frames = np.repeat(background[None], n, axis=0)
    side = max(4, min(height, width) // 4)
    for i in range(n):
        x = (i * 2) % (width - side)
        y = (height - side) // 2
        frames[i, y : y + side, x : x + side] = colour
    return frames


def mean_abs_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- as_uint8_frames ----------------------------------------------------------


def test_list_of_frames_becomes_contiguous_uint8_stack():
    frames = [f for f in moving_square(3)]
    arr = media.as_uint8_frames(frames)
    assert arr.shape == (3, H, W, 3)
    assert arr.dtype == np.uint8
    assert arr.flags["C_CONTIGUOUS"]


def test_float_frames_are_rejected_with_advice():
    floats = moving_square(2).astype(np.float32) / 255
    with pytest.raises(MediaError, match=r"\(f \* 255\)\.round\(\)\.astype"):
        media.as_uint8_frames(floats)
    with pytest.raises(MediaError, match="float"):
        media.as_uint8_frames(list(floats))


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, H, W), np.uint8),
        [np.zeros((H, W), np.uint8)],
        [np.zeros((H, W, 4), np.uint8)],
        np.zeros((2, H, W, 4), np.uint8),
        [np.zeros((H, W, 3), np.int64)],
    ],
    ids=["gray-stack", "gray-list", "rgba-list", "rgba-stack", "int64"],
)
def test_grayscale_rgba_and_non_uint8_frames_are_rejected(bad):
    with pytest.raises(MediaError):
        media.as_uint8_frames(bad)


def test_empty_and_mixed_size_frame_lists_are_rejected():
    with pytest.raises(MediaError, match="empty"):
        media.as_uint8_frames([])
    with pytest.raises(MediaError, match="empty"):
        media.as_uint8_frames(np.zeros((0, H, W, 3), np.uint8))
    with pytest.raises(MediaError, match="share a size"):
        media.as_uint8_frames([np.zeros((H, W, 3), np.uint8), np.zeros((H, W + 2, 3), np.uint8)])


# --- write / read -------------------------------------------------------------


def test_write_then_read_preserves_exact_frame_count_and_pixels(tmp_path: Path):
    frames = moving_square(17)
    path = media.write_mp4(frames, 16, tmp_path / "clip.mp4")

    assert path == tmp_path / "clip.mp4"
    assert media.count_frames(path) == 17
    decoded = media.read_frames(path)
    assert decoded.shape == frames.shape
    assert decoded.dtype == np.uint8
    assert mean_abs_error(decoded, frames) < 3
    # Order is kept: each decoded frame is closest to its own source frame.
    for i in (0, 8, 16):
        errors = [mean_abs_error(decoded[i], f) for f in frames]
        assert int(np.argmin(errors)) == i


@pytest.mark.parametrize("fps,n", [(7, 7), (24, 25), (30, 13), (29.97, 49), (5, 1)])
def test_write_keeps_frame_count_where_moviepy_clip_timing_drops_one(tmp_path: Path, fps, n):
    path = media.write_mp4(moving_square(n, 16, 16), fps, tmp_path / "clip.mp4")
    assert media.count_frames(path) == n


def test_written_file_is_h264_yuv420p_and_leaves_no_temp_files(tmp_path: Path):
    path = media.write_mp4(moving_square(3), 16, tmp_path / "clip.mp4")
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_write_replaces_existing_file(tmp_path: Path):
    path = tmp_path / "clip.mp4"
    media.write_mp4(moving_square(5), 16, path)
    media.write_mp4(moving_square(2), 16, path)
    assert media.count_frames(path) == 2


def test_odd_sizes_roundtrip(tmp_path: Path):
    frames = moving_square(5, height=47, width=63)
    path = media.write_mp4(frames, 16, tmp_path / "odd.mp4")
    decoded = media.read_frames(path)
    # Padded by one pixel on the right and bottom, repeating the edge.
    assert decoded.shape == (5, 48, 64, 3)
    assert mean_abs_error(decoded[:, :47, :63], frames) < 3
    assert mean_abs_error(decoded[:, 47, :63], frames[:, 46]) < 3
    assert mean_abs_error(decoded[:, :47, 63], frames[:, :, 62]) < 3


def test_write_rejects_bad_fps_and_missing_folder(tmp_path: Path):
    with pytest.raises(MediaError, match="fps"):
        media.write_mp4(moving_square(2), 0, tmp_path / "a.mp4")
    with pytest.raises(MediaError, match="does not exist"):
        media.write_mp4(moving_square(2), 16, tmp_path / "missing" / "a.mp4")


def test_probe_reports_count_rate_duration_and_size(tmp_path: Path):
    path = media.write_mp4(moving_square(24, height=32, width=40), 16, tmp_path / "clip.mp4")
    info = media.probe(path)
    assert info == media.VideoInfo(n_frames=24, fps=16.0, seconds=1.5, width=40, height=32)
    with pytest.raises(AttributeError):
        info.fps = 1.0  # type: ignore[misc]


def test_last_frame_is_exactly_the_final_decoded_frame(tmp_path: Path):
    frames = moving_square(9)
    path = media.write_mp4(frames, 16, tmp_path / "clip.mp4")
    last = media.last_frame(path)
    np.testing.assert_array_equal(last, media.read_frames(path)[-1])
    assert mean_abs_error(last, frames[-1]) < 3


def test_corrupt_file_raises_media_error(tmp_path: Path):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 50)
    for read in (media.read_frames, media.count_frames, media.probe, media.last_frame):
        with pytest.raises(MediaError, match="junk.mp4"):
            read(junk)


def test_truncated_and_missing_files_raise_media_error_naming_path(tmp_path: Path):
    good = media.write_mp4(moving_square(10), 16, tmp_path / "good.mp4")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MediaError, match="truncated.mp4"):
        media.read_frames(truncated)
    with pytest.raises(MediaError, match="nope.mp4"):
        media.read_frames(tmp_path / "nope.mp4")


# --- indices ------------------------------------------------------------------


def test_sample_indices_one_per_second_plus_last():
    assert media.sample_indices(49, 16) == [0, 16, 32, 48]
    assert media.sample_indices(50, 16) == [0, 16, 32, 48, 49]
    assert media.sample_indices(1, 16) == [0]
    assert media.sample_indices(16, 16) == [0, 15]


def test_sample_indices_other_rates():
    assert media.sample_indices(49, 16, per_second=2) == [0, 8, 16, 24, 32, 40, 48]
    assert media.sample_indices(10, 24, per_second=0.5) == [0, 9]
    # round() on a fractional step: 7.5 fps at 2 per second -> step 3.75.
    assert media.sample_indices(12, 7.5, per_second=2) == [0, 4, 8, 11]
    # More samples per second than frames: every frame, once.
    assert media.sample_indices(5, 4, per_second=10) == [0, 1, 2, 3, 4]


def test_sample_indices_rejects_bad_arguments():
    for args in [(0, 16), (10, 0), (10, 16, 0), (10, float("nan"))]:
        with pytest.raises(MediaError):
            media.sample_indices(*args)


# --- editing ------------------------------------------------------------------


def test_trim_prefix_keeps_first_frames_as_a_copy():
    frames = moving_square(6)
    kept = media.trim_prefix(frames, 4)
    np.testing.assert_array_equal(kept, frames[:4])
    kept[0] = 0
    assert frames[0].any()


def test_trim_prefix_to_zero_gives_empty_array_of_same_size():
    empty = media.trim_prefix(moving_square(3), 0)
    assert empty.shape == (0, H, W, 3)
    assert empty.dtype == np.uint8
    with pytest.raises(MediaError, match="n_keep"):
        media.trim_prefix(moving_square(3), 4)
    with pytest.raises(MediaError, match="n_keep"):
        media.trim_prefix(moving_square(3), -1)


def test_concatenate_in_memory_joins_in_order_and_requires_same_size():
    a, b = moving_square(3), moving_square(2, colour=(0, 0, 255))
    joined = media.concatenate([a, media.trim_prefix(a, 0), b])
    np.testing.assert_array_equal(joined, np.concatenate([a, b]))
    with pytest.raises(MediaError, match="share a size"):
        media.concatenate([a, moving_square(2, height=32)])
    with pytest.raises(MediaError):
        media.concatenate([])


def test_concatenate_files_keeps_every_frame(tmp_path: Path):
    a = media.write_mp4(moving_square(49), 16, tmp_path / "a.mp4")
    b = media.write_mp4(moving_square(25, colour=(30, 30, 230)), 16, tmp_path / "b.mp4")
    out = media.concatenate_files([a, b], tmp_path / "ab.mp4")

    assert media.count_frames(out) == 74
    info = media.probe(out)
    assert (info.width, info.height, info.fps) == (W, H, 16.0)
    joined = media.read_frames(out)
    expected = np.concatenate([media.read_frames(a), media.read_frames(b)])
    assert mean_abs_error(joined, expected) < 3


def test_concatenate_files_of_different_sizes(tmp_path: Path):
    a = media.write_mp4(moving_square(10), 16, tmp_path / "a.mp4")
    b = media.write_mp4(moving_square(7, height=96, width=128), 16, tmp_path / "b.mp4")
    c = media.write_mp4(moving_square(4, height=24, width=32), 16, tmp_path / "c.mp4")
    out = media.concatenate_files([a, b, c], tmp_path / "abc.mp4", fps=8)

    info = media.probe(out)
    assert info.n_frames == 21
    assert (info.width, info.height, info.fps) == (W, H, 8.0)
    # The larger clip is downscaled into the first clip's frame, not cropped.
    b_small = np.stack(
        [np.asarray(Image.fromarray(f).resize((W, H), Image.Resampling.BICUBIC)) for f in media.read_frames(b)]
    )
    assert mean_abs_error(media.read_frames(out)[10:17], b_small) < 4


def test_concatenate_files_rejects_empty_list_and_corrupt_input(tmp_path: Path):
    with pytest.raises(MediaError):
        media.concatenate_files([], tmp_path / "out.mp4")
    good = media.write_mp4(moving_square(3), 16, tmp_path / "good.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 500)
    with pytest.raises(MediaError, match="junk.mp4"):
        media.concatenate_files([good, junk], tmp_path / "out.mp4")
    assert not (tmp_path / "out.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.mp4", "junk.mp4"]


# --- comparing ----------------------------------------------------------------


def test_ssim_identical_is_one_and_shifted_is_lower():
    frame = moving_square(1)[0]
    assert media.first_frame_ssim(frame, frame) == pytest.approx(1.0)
    shifted = np.roll(frame, 6, axis=1)
    assert media.first_frame_ssim(frame, shifted) < 0.95


def test_ssim_resizes_frame_to_reference_size():
    frame = moving_square(1)[0]
    upscaled = np.asarray(Image.fromarray(frame).resize((W * 2, H * 2)))
    score = media.first_frame_ssim(frame, upscaled)
    assert 0.8 < score <= 1.0


def test_ssim_rejects_float_frames():
    frame = moving_square(1)[0]
    with pytest.raises(MediaError, match="float"):
        media.first_frame_ssim(frame, frame / 255.0)


# --- still images -------------------------------------------------------------


def test_png_save_encode_and_load_roundtrip_exactly(tmp_path: Path):
    frame = moving_square(1)[0]
    path = media.save_png(frame, tmp_path / "frame.png")
    np.testing.assert_array_equal(media.load_image(path), frame)
    np.testing.assert_array_equal(media.load_image(str(path)), frame)
    np.testing.assert_array_equal(media.load_image(media.encode_png(frame)), frame)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frame.png"]


def test_load_image_converts_grayscale_and_rgba_to_rgb():
    for mode, size in (("L", (W, H)), ("RGBA", (W, H))):
        buf = io.BytesIO()
        Image.new(mode, size).save(buf, format="PNG")
        img = media.load_image(buf.getvalue())
        assert img.shape == (H, W, 3)
        assert img.dtype == np.uint8


def test_load_image_rejects_non_image_bytes(tmp_path: Path):
    with pytest.raises(MediaError, match="is not a readable image"):
        media.load_image(b"definitely not an image")
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(MediaError, match=r"notes\.png is not a readable image"):
        media.load_image(text)
    with pytest.raises(MediaError, match="is not a readable image"):
        media.load_image(tmp_path / "missing.png")


def test_numpy_scalars_are_accepted_as_numbers():
    indices = media.sample_indices(np.int64(50), np.float32(16))
    assert indices == [0, 16, 32, 48, 49]
    assert all(type(i) is int for i in indices)


# --- streaming: one frame at a time -----------------------------------------


def test_frames_at_returns_the_frames_asked_for_in_the_order_asked(tmp_path):
    frames = moving_square(20)
    path = media.write_mp4(frames, 8, tmp_path / "a.mp4")
    picked = media.frames_at(path, [12, 0, 19])
    for index, frame in zip([12, 0, 19], picked):
        assert mean_abs_error(frame, frames[index]) < 2.0
    assert mean_abs_error(media.frame_at(path, 7), frames[7]) < 2.0


def test_frames_at_refuses_a_frame_past_the_end_unless_clamped(tmp_path):
    path = media.write_mp4(moving_square(5), 8, tmp_path / "a.mp4")
    with pytest.raises(MediaError, match="has no frame 9: it has 5"):
        media.frames_at(path, [1, 9])
    last, again = media.frames_at(path, [4, 9], clamp=True)
    assert np.array_equal(last, again)


def test_iter_frames_yields_a_window_of_the_clip(tmp_path):
    frames = moving_square(12)
    path = media.write_mp4(frames, 8, tmp_path / "a.mp4")
    window = list(media.iter_frames(path, start=3, stop=7))
    assert len(window) == 4 and mean_abs_error(window[0], frames[3]) < 2.0


def test_write_mp4_stream_takes_frames_one_at_a_time_and_keeps_every_one(tmp_path):
    frames = moving_square(17)
    path = media.write_mp4_stream((f for f in frames), 8, tmp_path / "s.mp4")
    assert media.count_frames(path) == 17
    with pytest.raises(MediaError, match="frame 1 is"):
        media.write_mp4_stream(iter([frames[0], np.zeros((10, 10, 3), np.uint8)]), 8, tmp_path / "bad.mp4")
    with pytest.raises(MediaError, match="no frames"):
        media.write_mp4_stream(iter([]), 8, tmp_path / "none.mp4")


def test_clips_are_encoded_visually_lossless(tmp_path):
    # Fine grey texture (luma detail: yuv420p halves chroma resolution by design, whatever the quality).
    rng = np.random.default_rng(0)
    texture = rng.integers(-20, 20, (9, 96, 128, 1))
    frames = np.clip(moving_square(9, 96, 128).astype(int) + texture, 0, 255).astype(np.uint8)
    decoded = media.read_frames(media.write_mp4(frames, 8, tmp_path / "t.mp4"))
    mse = float(((decoded.astype(float) - frames.astype(float)) ** 2).mean())
    psnr = 10 * np.log10(255 ** 2 / mse)
    assert psnr > 38.5, f"PSNR {psnr:.1f} dB: not visually lossless (x264's default quality gives about 34)"
