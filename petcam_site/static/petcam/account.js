/* The account page (templates/account.html): copy a new API token with one click. */

const button = document.getElementById("copy-token");
const key = document.getElementById("new-token-key");

function selectKey() {
  const range = document.createRange();
  range.selectNodeContents(key);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
}

async function copy() {
  const text = key.textContent.trim();
  try {
    // navigator.clipboard needs a secure context (https or localhost)
    if (navigator.clipboard) {
      await navigator.clipboard.writeText(text);
    } else {
      selectKey();
      if (!document.execCommand("copy")) throw new Error("copy refused");
    }
    button.textContent = gettext("Copied");
    button.dataset.state = "copied";
  } catch {
    selectKey(); // the user copies by hand
    button.textContent = gettext("Selected: press Ctrl+C");
    button.dataset.state = "selected";
  }
}

if (button && key) {
  button.hidden = false; // without this script the key is still select-all on a click
  button.addEventListener("click", copy);
}
