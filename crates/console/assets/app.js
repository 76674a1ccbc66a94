// Start-up, login, the top bar and the hash router. Which screens a user is offered follows
// the permissions the API reports for them (/v1/me); the API still refuses anything else.

import { call, setCsrf, ApiProblem } from "./api.js";
import { el, fill, loadCatalogue, say, t } from "./dom.js";
import { SCREENS } from "./screens.js";

const main = document.getElementById("main");
let me = null;
let leaveScreen = () => {};

async function start() {
  await loadCatalogue(navigator.language?.startsWith("en") ? "en" : "en");
  document.getElementById("logout").textContent = t("top.logout");
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  try {
    me = await call("GET", "/v1/me");
    if (me.csrf_token) setCsrf(me.csrf_token);
    showShell();
  } catch (problem) {
    if (problem instanceof ApiProblem && problem.status === 401) showLogin();
    else fill(main, el("p", { class: "error" }, problem.message));
  }
}

function showLogin(message = "") {
  leaveScreen();
  document.getElementById("top").hidden = true;
  const name = el("input", { id: "login-name", testid: "login-name", autocomplete: "username", required: true });
  const password = el("input", {
    id: "login-password", testid: "login-password", type: "password",
    autocomplete: "current-password", required: true,
  });
  const error = el("p", { class: "error", testid: "login-error", role: "alert", hidden: !message }, message);
  const form = el("form", { class: "login", onsubmit: async (event) => {
    event.preventDefault();
    try {
      const session = await call("POST", "/v1/login", { body: { name: name.value, password: password.value } });
      setCsrf(session.csrf_token);
      me = await call("GET", "/v1/me");
      showShell();
    } catch (problem) {
      error.hidden = false;
      error.textContent = problem.code === "throttled" ? t("login.throttled") : t("login.refused");
    }
  } },
    el("h1", {}, t("login.title")),
    el("label", { for: "login-name" }, t("login.name")), name,
    el("label", { for: "login-password" }, t("login.password")), password,
    el("button", { type: "submit", testid: "login-submit" }, t("login.submit")),
    error,
  );
  fill(main, form);
  name.focus();
}

async function logout() {
  try {
    await call("POST", "/v1/logout");
  } catch (_) {
    // the session may already be gone; the login screen is right either way
  }
  setCsrf("");
  me = null;
  location.hash = "";
  showLogin();
}

/** The screens this user may use, in menu order. */
function allowedScreens() {
  const permissions = new Set(me?.permissions ?? []);
  return SCREENS.filter((screen) => screen.needs.some((permission) => permissions.has(permission)));
}

function showShell() {
  document.getElementById("top").hidden = false;
  document.getElementById("whoami").textContent = me.name;
  const nav = document.getElementById("nav");
  fill(nav, ...allowedScreens().map((screen) =>
    el("a", { href: `#/${screen.id}`, testid: `nav-${screen.id}` }, t(`nav.${screen.id}`))));
  route();
}

function route() {
  if (!me) return;
  const [, screenId = "", ...rest] = location.hash.split("/");
  const screens = allowedScreens();
  const screen = screens.find((s) => s.id === screenId) ?? screens[0];
  leaveScreen();
  leaveScreen = () => {};
  for (const link of document.querySelectorAll("#nav a")) {
    link.toggleAttribute("aria-current", link.dataset.testid === `nav-${screen?.id}`);
  }
  if (!screen) {
    fill(main, el("p", {}, t("app.no_screens")));
    return;
  }
  const context = {
    me,
    main,
    onLeave: (cleanup) => { const previous = leaveScreen; leaveScreen = () => { previous(); cleanup(); }; },
    expired: () => showLogin(t("login.expired")),
  };
  Promise.resolve(screen.render(context, rest.map(decodeURIComponent))).catch((problem) => {
    if (problem instanceof ApiProblem && problem.status === 401) context.expired();
    else fill(main, el("p", { class: "error", role: "alert" }, problem.message));
  });
  say(t(`nav.${screen.id}`));
}

start();
