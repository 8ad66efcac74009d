// Keyboard shortcuts and the clip players' review tools. Shortcuts click the buttons by elem_id and are ignored
// while a person types in a text field, a dropdown or a video's own controls (Esc leaves a text field). The
// keys depend on the tab on screen: the Session tab's annotation panel, or the Study tab's labelling queue.
(() => {
  const sessionKeys = {
    ArrowLeft: "btn-prev-attempt", ArrowRight: "btn-next-attempt",
    a: "btn-d2-accept", r: "btn-d2-reject", "1": "btn-d3-1", "2": "btn-d3-2", "3": "btn-d3-3",
  };
  const studyKeys = { n: "btn-q-next", b: "btn-q-back", a: "btn-q-accept", r: "btn-q-reject" };
  const sessionSheet = `<b>Keyboard shortcuts</b><table>
    <tr><td>← / →</td><td>previous / next attempt</td></tr>
    <tr><td>a / r</td><td>D2: accept / reject</td></tr>
    <tr><td>1 / 2 / 3</td><td>D3: rate the suggestion</td></tr>
    <tr><td>?</td><td>show / hide this sheet</td></tr></table>`;
  const studySheet = `<b>Study keys</b><table>
    <tr><td>n / b</td><td>next item / back</td></tr>
    <tr><td>a / r</td><td>D2: accept / reject the clip</td></tr>
    <tr><td>1 / 2 / 3</td><td>D3: rate the suggestion</td></tr>
    <tr><td>1 - 6</td><td>D1: steps the task needs</td></tr>
    <tr><td>, / .</td><td>previous / next frame</td></tr>
    <tr><td>o</td><td>note</td></tr>
    <tr><td>?</td><td>show / hide this sheet</td></tr></table>`;
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT", "VIDEO"].includes(el.tagName));
  const visible = (el) => !!el && el.offsetParent !== null;
  const studyOn = () => visible(document.getElementById("study-panel"));
  const button = (id) => {
    const el = document.getElementById(id);
    return el && el.tagName !== "BUTTON" ? el.querySelector("button") || el : el;
  };
  const toggleSheet = () => {
    let box = document.getElementById("shortcut-sheet");
    if (!box) {
      box = document.createElement("div");
      box.id = "shortcut-sheet";
      box.addEventListener("click", () => box.classList.remove("open"));
      document.body.appendChild(box);
    }
    box.innerHTML = studyOn() ? studySheet : sessionSheet;
    box.classList.toggle("open");
  };

  // ----- the clip players (ui/templates/parts.html clip_player) -----
  const frameOf = (player) => {
    const video = player.querySelector("video");
    const fps = Number(player.dataset.fps) || 1;
    if (player.dataset.frame !== undefined && video.paused) return Number(player.dataset.frame);
    return Math.floor(video.currentTime * fps + 1e-6);
  };
  const showFrame = (player, frame) => {
    const readout = player.querySelector(".frame-readout");
    if (readout) readout.textContent = `frame ${frame} / ${Number(player.dataset.frames) - 1}`;
  };
  const seek = (player, frame) => {
    const video = player.querySelector("video");
    const last = Number(player.dataset.frames) - 1;
    const index = Math.min(Math.max(frame, 0), last);
    video.pause();
    // The middle of the frame's interval, so that rounding never lands on its neighbour.
    video.currentTime = (index + 0.5) / (Number(player.dataset.fps) || 1);
    player.dataset.frame = String(index);
    showFrame(player, index);
  };
  document.addEventListener("click", (event) => {
    const tool = event.target.closest(".clip-step, .clip-jump, .clip-timeline .mark");
    const player = tool && tool.closest(".clip-player");
    if (!player) return;
    const frame = tool.classList.contains("clip-step") ? frameOf(player) + Number(tool.dataset.delta)
      : Number(tool.dataset.frame);
    seek(player, frame);
    event.preventDefault();
  });
  document.addEventListener("change", (event) => {
    if (!event.target.matches(".clip-speed")) return;
    const video = event.target.closest(".clip-player").querySelector("video");
    video.playbackRate = Number(event.target.value);
  });
  // Media events do not bubble: listen in the capture phase.
  for (const name of ["timeupdate", "play"]) {
    document.addEventListener(name, (event) => {
      const player = event.target.closest && event.target.closest(".clip-player");
      if (!player) return;
      if (name === "play") delete player.dataset.frame;
      showFrame(player, Math.floor(event.target.currentTime * (Number(player.dataset.fps) || 1) + 1e-6));
    }, true);
  }

  // ----- keys -----
  const studyKey = (key) => {
    const item = document.querySelector("#study-item .study-item");
    const kind = item ? item.dataset.kind : "";
    if (/^[1-6]$/.test(key)) {
      if (kind === "D1") return `btn-q-depth-${key}`;
      if (kind === "D3" && Number(key) <= 3) return `btn-q-${key}`;
      return null;
    }
    if (kind !== "D2" && (key === "a" || key === "r")) return null;
    return studyKeys[key] || null;
  };
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "?") { toggleSheet(); event.preventDefault(); return; }
    const study = studyOn();
    if (event.key === "," || event.key === ".") {
      const player = document.querySelector(study ? "#study-item .clip-player" : "#review-compare .picked .clip-player");
      if (player) { seek(player, frameOf(player) + (event.key === "." ? 1 : -1)); event.preventDefault(); }
      return;
    }
    if (study && event.key === "o") {
      const box = document.querySelector("#q-note textarea");
      if (box) { box.focus(); event.preventDefault(); }
      return;
    }
    const id = study ? studyKey(event.key) : sessionKeys[event.key];
    const el = id && button(id);
    if (el) { el.click(); event.preventDefault(); }
  });
})();
