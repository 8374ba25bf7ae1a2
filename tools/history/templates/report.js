// A click on a matrix cell opens the dialog with its cases; Escape or the close button closes it.
document.querySelectorAll("button[data-dialog]").forEach(function (button) {
  button.addEventListener("click", function () {
    document.getElementById(button.dataset.dialog).showModal();
  });
});
