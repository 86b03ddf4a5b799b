// Placeholder: the console's code replaces this file (docs/console.md).
document.getElementById("app").textContent = "QBO Link console";
