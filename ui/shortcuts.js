// Keyboard shortcuts for annotation. They click the buttons by elem_id, and are ignored while a person
// types in a text field, a dropdown or a video's own controls.
(() => {
  const keys = {
    ArrowLeft: "btn-prev-attempt", ArrowRight: "btn-next-attempt",
    a: "btn-d2-accept", r: "btn-d2-reject", "1": "btn-d3-1", "2": "btn-d3-2", "3": "btn-d3-3",
  };
  const sheet = `<b>Keyboard shortcuts</b><table>
    <tr><td>← / →</td><td>previous / next attempt</td></tr>
    <tr><td>a / r</td><td>D2: accept / reject</td></tr>
    <tr><td>1 / 2 / 3</td><td>D3: rate the suggestion</td></tr>
    <tr><td>?</td><td>show / hide this sheet</td></tr></table>`;
  const typing = (el) => el && (el.isContentEditable || ["INPUT", "TEXTAREA", "SELECT", "VIDEO"].includes(el.tagName));
  const button = (id) => {
    const el = document.getElementById(id);
    return el && el.tagName !== "BUTTON" ? el.querySelector("button") || el : el;
  };
  const toggleSheet = () => {
    let box = document.getElementById("shortcut-sheet");
    if (!box) {
      box = document.createElement("div");
      box.id = "shortcut-sheet";
      box.innerHTML = sheet;
      box.addEventListener("click", () => box.classList.remove("open"));
      document.body.appendChild(box);
    }
    box.classList.toggle("open");
  };
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (event.key === "?") { toggleSheet(); event.preventDefault(); return; }
    const id = keys[event.key];
    const el = id && button(id);
    if (el) { el.click(); event.preventDefault(); }
  });
})();
