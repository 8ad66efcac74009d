"""Tiny random-weight models, built offline in a few seconds and saved the way the real checkpoints are
saved, so that the production loading code (collabvr.backends.video_models, .local_vlm) reads them from a
folder exactly as it reads a downloaded model. No hub access: tokenizers are built from in-memory
vocabularies. The outputs are noise; these models test plumbing (shapes, fps, cancellation, repair), never
quality.

Each `save_*` function writes one model family to a folder and returns the spec fields the registry needs.
"""

from __future__ import annotations

from pathlib import Path

# Words the tiny T5 tokenizer knows whole; anything else falls back to single characters.
_WORDS = ("a an the of and to in is on with move slide turn cup ball red blue green left right up down "
          "camera pan zoom slow fast disc goal block").split()
_CHARS = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-:")

# The special tokens a Qwen-VL chat uses; the tiny byte-level tokenizer adds them.
QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                 "<|image_pad|>", "<|video_pad|>"]
QWEN_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def t5_tokenizer():
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -2.0)]
    vocab += [("\u2581" + w, -5.0) for w in _WORDS]
    vocab += [(c, -8.0) for c in _CHARS] + [("\u2581" + c, -9.0) for c in _CHARS]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def t5_encoder(vocab_size: int, umt5: bool = False):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    options = dict(vocab_size=vocab_size, d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                   relative_attention_num_buckets=8)
    if umt5:
        return UMT5EncoderModel(UMT5Config(is_encoder_decoder=False, **options)).eval()
    return T5EncoderModel(T5Config(dropout_rate=0.0, **options)).eval()


def qwen_tokenizer():
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Tokenizer

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tok = Qwen2Tokenizer(vocab={c: i for i, c in enumerate(alphabet)}, merges=[], unk_token=None,
                         eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": QWEN_SPECIALS})
    tok.chat_template = QWEN_CHAT_TEMPLATE
    return tok


# ----- video pipelines ---------------------------------------------------------------------------------------

def _wan_transformer(**options):
    from diffusers import WanTransformer3DModel

    return WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=12, text_dim=32,
                                 freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                                 qk_norm="rms_norm_across_heads", rope_max_seq_len=32, **options)


def _wan21_vae():
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


def _flow_unipc(shift: float = 3.0):
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=shift)


def build_wan_ti2v():
    """Wan 2.2 TI2V-5B in miniature: the 48-channel patchified VAE, one transformer, expand_timesteps."""
    import torch
    from diffusers import AutoencoderKLWan, WanImageToVideoPipeline

    torch.manual_seed(0)
    tok = t5_tokenizer()
    vae = AutoencoderKLWan(base_dim=3, z_dim=48, in_channels=12, out_channels=12, is_residual=True, patch_size=2,
                           latents_mean=[0.0] * 48, latents_std=[1.0] * 48, dim_mult=[1, 1, 1, 1],
                           num_res_blocks=1, scale_factor_spatial=16, scale_factor_temporal=4,
                           temperal_downsample=[False, True, True])
    return WanImageToVideoPipeline(tokenizer=tok, text_encoder=t5_encoder(len(tok), umt5=True), vae=vae,
                                   scheduler=_flow_unipc(), transformer=_wan_transformer(in_channels=48, out_channels=48),
                                   image_encoder=None, image_processor=None, transformer_2=None, boundary_ratio=None,
                                   expand_timesteps=True)


def build_wan_a14b():
    """Wan 2.2 I2V-A14B in miniature: two experts (high noise, low noise) switched at boundary_ratio."""
    import torch
    from diffusers import WanImageToVideoPipeline

    torch.manual_seed(0)
    tok = t5_tokenizer()
    return WanImageToVideoPipeline(tokenizer=tok, text_encoder=t5_encoder(len(tok), umt5=True), vae=_wan21_vae(),
                                   scheduler=_flow_unipc(), transformer=_wan_transformer(in_channels=36, out_channels=16),
                                   transformer_2=_wan_transformer(in_channels=36, out_channels=16),
                                   image_encoder=None, image_processor=None, boundary_ratio=0.875)


def build_wan21_i2v():
    """Wan 2.1 I2V in miniature: a CLIP image encoder beside the text encoder."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, WanImageToVideoPipeline
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    tok = t5_tokenizer()
    encoder = CLIPVisionModel(CLIPVisionConfig(hidden_size=4, num_hidden_layers=2, num_attention_heads=2,
                                               image_size=32, intermediate_size=16, patch_size=1))
    return WanImageToVideoPipeline(tokenizer=tok, text_encoder=t5_encoder(len(tok), umt5=True), vae=_wan21_vae(),
                                   scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                                   transformer=_wan_transformer(in_channels=36, out_channels=16, image_dim=4),
                                   image_encoder=encoder, image_processor=CLIPImageProcessorPil(crop_size=32, size=32))


def build_ltx():
    import torch
    from diffusers import (AutoencoderKLLTXVideo, FlowMatchEulerDiscreteScheduler, LTXImageToVideoPipeline,
                           LTXVideoTransformer3DModel)

    torch.manual_seed(0)
    tok = t5_tokenizer()
    transformer = LTXVideoTransformer3DModel(in_channels=8, out_channels=8, patch_size=1, patch_size_t=1,
                                             num_attention_heads=4, attention_head_dim=8, cross_attention_dim=32,
                                             num_layers=2, caption_channels=32)
    vae = AutoencoderKLLTXVideo(
        in_channels=3, out_channels=3, latent_channels=8, block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8), layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1), spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False), decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4, upsample_factor=(1,) * 4, timestep_conditioning=False, patch_size=1,
        patch_size_t=1, encoder_causal=True, decoder_causal=False)
    return LTXImageToVideoPipeline(tokenizer=tok, text_encoder=t5_encoder(len(tok)), vae=vae,
                                   scheduler=FlowMatchEulerDiscreteScheduler(), transformer=transformer)


def build_cogvideox():
    import torch
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline,
                           CogVideoXTransformer3DModel)

    torch.manual_seed(0)
    tok = t5_tokenizer()
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=8, out_channels=4, time_embed_dim=2,
        text_embed_dim=32, num_layers=2, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=16, use_rotary_positional_embeddings=True,
        use_learned_positional_embeddings=True)
    vae = AutoencoderKLCogVideoX(in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
                                 up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8),
                                 latent_channels=4, layers_per_block=1, norm_num_groups=2,
                                 temporal_compression_ratio=4)
    return CogVideoXImageToVideoPipeline(tokenizer=tok, text_encoder=t5_encoder(len(tok)), vae=vae,
                                         scheduler=CogVideoXDDIMScheduler(), transformer=transformer)


class TinySafetyChecker:
    """Stands in for NVIDIA's Cosmos guardrail (a separate package that downloads its own models): passes
    everything. Only tests use it; the production loader insists on the real one."""

    def __new__(cls):
        import torch
        from diffusers import ConfigMixin, ModelMixin

        class _Checker(ModelMixin, ConfigMixin):
            def __init__(self) -> None:
                super().__init__()
                self._dummy = torch.nn.Parameter(torch.zeros(1))

            def check_text_safety(self, prompt: str) -> bool:
                return True

            def check_video_safety(self, frames):
                return frames

        return _Checker()


def build_cosmos25():
    """Cosmos-Predict 2.5 in miniature. concat_padding_mask=False: the real checkpoints set True, which needs
    torchvision (absent here)."""
    import torch
    from diffusers import Cosmos2_5_PredictBasePipeline, CosmosTransformer3DModel, UniPCMultistepScheduler
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    torch.manual_seed(0)
    tok = qwen_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    text_encoder = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(
        text_config=dict(hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
                         num_key_value_heads=2, vocab_size=len(tok),
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [1, 1, 2]}),
        vision_config=dict(depth=2, hidden_size=16, intermediate_size=16, num_heads=2, out_hidden_size=16),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])).eval()
    transformer = CosmosTransformer3DModel(
        in_channels=17, out_channels=16, num_attention_heads=2, attention_head_dim=16, num_layers=2, mlp_ratio=2,
        text_embed_dim=16 * 2, adaln_lora_dim=4, max_size=(4, 32, 32), patch_size=(1, 2, 2),
        rope_scale=(2.0, 1.0, 1.0), concat_padding_mask=False, extra_pos_embed_type="learnable")
    return Cosmos2_5_PredictBasePipeline(text_encoder=text_encoder, tokenizer=tok, transformer=transformer,
                                         vae=_wan21_vae(), scheduler=UniPCMultistepScheduler(),
                                         safety_checker=TinySafetyChecker())


PIPELINES = {
    "wan2.2-ti2v-5b": build_wan_ti2v,
    "wan2.2-i2v-a14b": build_wan_a14b,
    "wan2.1-i2v-14b-480p": build_wan21_i2v,
    "ltx-video": build_ltx,
    "cogvideox-5b-i2v": build_cogvideox,
    "cosmos-predict2.5-2b": build_cosmos25,
}


def save_pipeline(model: str, folder: Path) -> Path:
    """Build the tiny stand-in of a catalog model and save it to `folder` (as from_pretrained expects)."""
    pipe = PIPELINES[model]()
    if model == "cosmos-predict2.5-2b":
        pipe.safety_checker = None  # the checker is not saved; the loader gets it separately
        pipe.register_to_config(safety_checker=(None, None))
    pipe.save_pretrained(folder)
    return folder


# ----- vision-language models ---------------------------------------------------------------------------------

def save_qwen25_vl(folder: Path) -> Path:
    """A tiny Qwen2.5-VL with its processor, saved as a Qwen2.5-VL checkpoint is (the image-only processor,
    since the video processor needs torchvision)."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    class _ImageOnly(Qwen2_5_VLProcessor):
        @classmethod
        def get_attributes(cls):
            return ["image_processor", "tokenizer"]

    torch.manual_seed(0)
    tok = qwen_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIALS}
    improc = Qwen2VLImageProcessorPil(size={"shortest_edge": 28 * 28, "longest_edge": 56 * 56}, patch_size=14,
                                      merge_size=2, temporal_patch_size=2)
    processor = _ImageOnly(image_processor=improc, tokenizer=tok, chat_template=QWEN_CHAT_TEMPLATE)
    config = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 1, 1]},
                         bos_token_id=ids["<|im_start|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=32, out_hidden_size=32, num_heads=4,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, fullatt_block_indexes=[1],
                           window_size=28),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
