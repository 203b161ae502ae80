/** The web interface. For now: the live home page at `/`; the full app comes later. */
export { renderHomePage } from "./home.js";
