// Placeholder: the connection screen.
import { h } from "../ui.js";

export async function render(view) {
  view.append(h("h1", {}, "connection"));
}
