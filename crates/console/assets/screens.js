// The screens. Each renders into context.main from API answers; `needs` lists the permissions
// (any of them) that make the screen worth offering.

import { call, imageUrl, ApiProblem } from "./api.js";
import { el, fill, rateInWords, say, t, when } from "./dom.js";

export const SCREENS = [
  { id: "live", needs: ["ViewCameras"], render: live },
  { id: "alerts", needs: ["ViewAlerts"], render: alerts },
  { id: "search", needs: ["Search"], render: search },
  { id: "subjects", needs: ["Enrol"], render: subjects },
  { id: "audit", needs: ["ReadAudit"], render: audit },
  { id: "admin", needs: ["ManageUsers"], render: admin },
];

function heading(key) {
  return el("h1", {}, t(key));
}

function problemText(problem) {
  return problem instanceof ApiProblem ? `${problem.message} (${problem.code})` : String(problem);
}

// --- Live -----------------------------------------------------------------------------------

async function live(context) {
  const grid = el("div", { class: "grid" });
  fill(context.main, heading("live.title"), grid);
  const previous = new Map();
  const refresh = async () => {
    const cameras = await call("GET", "/v1/cameras");
    const now = performance.now();
    fill(grid, ...cameras.map((camera) => {
      const status = camera.status;
      const before = previous.get(status.id);
      const fps = before ? ((status.frames - before.frames) * 1000) / (now - before.at) : null;
      previous.set(status.id, { frames: status.frames, at: now });
      return el("section", { class: `card state-${status.state}`, testid: "camera-card", "data-camera-id": status.id },
        el("h2", {}, camera.config.name || status.id),
        el("p", {}, t("live.state"), " ", el("strong", { testid: "camera-state" }, status.state)),
        el("p", {}, t("live.fps"), " ", el("span", { testid: "camera-fps" }, fps === null ? "…" : fps.toFixed(1))),
        el("p", {}, t("live.drops"), " ", el("span", { testid: "camera-drops" }, String(status.frames_dropped))),
        status.last_error && status.state !== "streaming"
          ? el("p", { class: "error", testid: "camera-error" }, status.last_error) : null,
        camera.analysis
          ? el("p", { class: "muted" }, t("live.analysis", {
            faces: camera.analysis.faces ?? 0, sightings: camera.analysis.sightings ?? 0 }))
          : null,
      );
    }));
    if (cameras.length === 0) grid.append(el("p", {}, t("live.none")));
  };
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  context.onLeave(() => clearInterval(timer));
}

// --- Alerts and review ----------------------------------------------------------------------

async function alerts(context, [alertId]) {
  if (alertId) return review(context, alertId);
  const list = el("div", { class: "list" });
  fill(context.main, heading("alerts.title"), list);
  const render = (views) => {
    fill(list, ...views.map((view) => {
      const alert = view.alert;
      return el("a", { class: `row state-${alert.state}`, href: `#/alerts/${alert.id}`, testid: "alert-row", "data-alert-id": alert.id },
        el("span", { testid: "alert-subject" }, alert.subject_name),
        el("span", { testid: "alert-state" }, t(`alert.state.${alert.state}`)),
        el("span", {}, rateInWords(alert.false_match_rate)),
        el("span", { class: "muted" }, when(alert.created_at_ms)),
      );
    }));
    if (views.length === 0) list.append(el("p", {}, t("alerts.none")));
  };
  const load = async () => render(await call("GET", "/v1/alerts"));
  await load();
  // Monitoring roles get the live stream; others (who see alerts through a case) poll.
  const permissions = new Set(context.me.permissions);
  if (permissions.has("MonitorAllCameras") && window.EventSource) {
    const stream = new EventSource("/v1/alerts/stream");
    stream.onmessage = () => load().catch(() => {});
    stream.addEventListener("alert", () => load().catch(() => {}));
    context.onLeave(() => stream.close());
    const timer = setInterval(() => load().catch(() => {}), 10000);
    context.onLeave(() => clearInterval(timer));
  } else {
    const timer = setInterval(() => load().catch(() => {}), 3000);
    context.onLeave(() => clearInterval(timer));
  }
}

async function review(context, alertId) {
  const view = await call("GET", `/v1/alerts/${encodeURIComponent(alertId)}`);
  const alert = view.alert;
  const probe = el("img", { testid: "review-probe", alt: t("review.probe_alt") });
  const enrolled = el("img", { testid: "review-enrolled", alt: t("review.enrolled_alt") });
  imageUrl(view.probe_crop_url).then((url) => { probe.src = url; }).catch(() => {});
  imageUrl(view.enrolled_photo_url).then((url) => { enrolled.src = url; }).catch(() => {});
  const comment = el("textarea", { id: "review-comment", testid: "review-comment", rows: 3, required: true });
  const error = el("p", { class: "error", role: "alert", testid: "review-error", hidden: true });
  const state = el("strong", { testid: "review-state" }, t(`alert.state.${alert.state}`));
  const reviewers = el("ul", { testid: "review-reviewers" },
    ...alert.reviews.map((r) => el("li", {}, t("review.by", {
      who: r.reviewer, decision: t(`review.decision.${r.decision}`), at: when(r.at_ms) }), r.note ? ` — ${r.note}` : "")));
  const confirmations = alert.reviews.filter((r) => r.decision === "confirm").length;
  const decide = (decision) => async () => {
    error.hidden = true;
    if (!comment.value.trim()) {
      error.hidden = false;
      error.textContent = t("review.comment_required");
      comment.focus();
      return;
    }
    try {
      await call("POST", `/v1/alerts/${alert.id}/review`, { body: { decision, note: comment.value.trim() } });
      say(t("review.done"));
      await review(context, alertId);
    } catch (problem) {
      error.hidden = false;
      error.textContent = problemText(problem);
    }
  };
  const open = alert.state === "candidate";
  fill(context.main,
    el("p", {}, el("a", { href: "#/alerts" }, t("review.back"))),
    heading("review.title"),
    el("p", {}, t("review.subject"), " ", el("strong", {}, alert.subject_name), " · ", t("review.state"), " ", state),
    el("div", { class: "pair" },
      el("figure", {}, probe, el("figcaption", {}, t("review.probe"))),
      el("figure", {}, enrolled, el("figcaption", {}, t("review.enrolled")))),
    el("p", { testid: "review-fmr-words", class: "fmr" }, rateInWords(alert.false_match_rate)),
    el("p", { class: "muted" }, t("review.expected", {
      expected: alert.expected_false_candidates.toPrecision(2), gallery: alert.gallery_templates })),
    el("p", {}, t("review.rule", { needed: view.confirmations_needed, have: confirmations, creator: alert.entry_created_by })),
    reviewers,
    open ? el("div", { class: "decide" },
      el("label", { for: "review-comment" }, t("review.comment")), comment,
      el("button", { type: "button", testid: "review-confirm", onclick: decide("confirm") }, t("review.confirm")),
      el("button", { type: "button", class: "danger", testid: "review-reject", onclick: decide("reject") }, t("review.reject")),
    ) : el("p", {}, t("review.closed")),
    error,
  );
}

// --- Retrospective search -------------------------------------------------------------------

async function search(context) {
  const photo = el("input", { id: "search-photo", testid: "search-photo", type: "file", accept: "image/*" });
  const caseRef = el("input", { id: "search-case", testid: "search-case" });
  const reason = el("input", { id: "search-reason", testid: "search-reason" });
  const error = el("p", { class: "error", role: "alert", testid: "search-error", hidden: true });
  const results = el("div", { class: "list" });
  const form = el("form", { class: "form", onsubmit: async (event) => {
    event.preventDefault();
    error.hidden = true;
    fill(results);
    // The case and the reason come first: no search runs without them.
    if (!caseRef.value.trim() || !reason.value.trim()) {
      error.hidden = false;
      error.textContent = t("search.case_and_reason_required");
      return;
    }
    if (!photo.files.length) {
      error.hidden = false;
      error.textContent = t("search.photo_required");
      return;
    }
    const headers = { "X-Vigil-Case": caseRef.value.trim(), "X-Vigil-Reason": reason.value.trim() };
    const body = new FormData();
    body.append("image", photo.files[0]);
    try {
      const report = await call("POST", "/v1/search", { body, headers });
      if (!report.hits.length) results.append(el("p", {}, t("search.nothing")));
      for (const hit of report.hits) {
        const crop = el("img", { alt: t("search.crop_alt") });
        imageUrl(hit.sighting.crop_url, headers).then((url) => { crop.src = url; }).catch(() => {});
        results.append(el("div", { class: "row", testid: "search-hit" }, crop,
          el("span", {}, hit.sighting.camera),
          el("span", {}, when(hit.sighting.best_at_ms)),
          el("span", {}, rateInWords(hit.false_match_rate))));
      }
    } catch (problem) {
      error.hidden = false;
      error.textContent = problemText(problem);
    }
  } },
  el("label", { for: "search-case" }, t("search.case")), caseRef,
  el("label", { for: "search-reason" }, t("search.reason")), reason,
  el("label", { for: "search-photo" }, t("search.photo")), photo,
  el("button", { type: "submit", testid: "search-submit" }, t("search.submit")));
  fill(context.main, heading("search.title"), el("p", { class: "muted" }, t("search.intro")), form, error, results);
}

// --- Subjects and enrolment -----------------------------------------------------------------

async function subjects(context) {
  const list = el("div", { class: "list" });
  const filter = el("input", { id: "subject-filter", type: "search" });
  const name = el("input", { id: "enrol-name", testid: "enrol-name", required: true });
  const photos = el("input", { id: "enrol-photos", testid: "enrol-photos", type: "file", accept: "image/*", multiple: true });
  const result = el("div", { testid: "enrol-result", role: "status" });
  let all = [];
  // Names compare in Unicode normal form and the user's locale, so Cyrillic and other
  // scripts filter as they read.
  const normal = (text) => text.normalize("NFC").toLocaleLowerCase();
  const render = () => {
    const wanted = normal(filter.value.trim());
    const shown = all.filter((s) => !wanted || normal(s.name).includes(wanted));
    fill(list, ...shown.map((subject) => el("div", { class: "row", testid: "subject-row" },
      el("span", { testid: "subject-name" }, subject.name),
      el("span", { class: "muted" }, t("subjects.templates", { n: subject.template_count })))));
  };
  const load = async () => { all = await call("GET", "/v1/subjects?limit=1000"); render(); };
  filter.addEventListener("input", render);
  const form = el("form", { class: "form", onsubmit: async (event) => {
    event.preventDefault();
    fill(result);
    const body = new FormData();
    body.append("name", name.value);
    for (const file of photos.files) body.append("image", file);
    try {
      const report = await call("POST", "/v1/subjects", { body });
      fill(result, el("p", {}, t("enrol.done", { name: report.subject.name })),
        el("ul", {}, ...report.enrolled.map((image) =>
          el("li", {}, t("enrol.photo", { name: image.name, quality: image.quality.toFixed(2) })))));
      await load();
    } catch (problem) {
      fill(result, el("p", { class: "error", role: "alert" }, enrolmentProblem(problem)));
    }
  } },
  el("label", { for: "enrol-name" }, t("enrol.name")), name,
  el("label", { for: "enrol-photos" }, t("enrol.photos")), photos,
  el("button", { type: "submit", testid: "enrol-submit" }, t("enrol.submit")));
  fill(context.main, heading("subjects.title"),
    el("label", { for: "subject-filter" }, t("subjects.filter")), filter, list,
    el("h2", {}, t("enrol.title")), form, result);
  await load();
}

/** Quality feedback a person can act on, from the API's stable codes. */
function enrolmentProblem(problem) {
  const known = ["no_face", "no_usable_face", "ambiguous_faces", "too_many_faces", "corrupt_image",
    "unsupported_image_format", "image_too_large", "missing_field", "conflict"];
  if (problem instanceof ApiProblem && known.includes(problem.code)) {
    return `${t(`enrol.problem.${problem.code}`)} — ${problem.message}`;
  }
  return problemText(problem);
}

// --- Audit ----------------------------------------------------------------------------------

async function audit(context) {
  const status = el("p", { testid: "audit-verify-status", role: "status" }, t("audit.verifying"));
  const misuse = el("div", { class: "list" });
  const log = el("table", { class: "log" });
  fill(context.main, heading("audit.title"), status, el("h2", {}, t("audit.misuse")), misuse, el("h2", {}, t("audit.log")), log);
  call("GET", "/v1/audit/verify").then((report) => {
    status.textContent = report.problems.length === 0
      ? t("audit.verified", { n: report.entries_checked })
      : t("audit.broken", { n: report.problems.length });
    status.className = report.problems.length === 0 ? "ok" : "error";
  }).catch((problem) => { status.textContent = problemText(problem); });
  const alertsFound = await call("GET", "/v1/misuse/alerts");
  fill(misuse, ...alertsFound.map((alert) => el("div", { class: "row", testid: "misuse-alert-row" },
    el("span", {}, alert.user_name), el("span", {}, alert.rule), el("span", {}, alert.detail))));
  if (!alertsFound.length) misuse.append(el("p", {}, t("audit.no_misuse")));
  const entries = await call("GET", "/v1/audit?limit=200");
  fill(log,
    el("thead", {}, el("tr", {}, ...["audit.seq", "audit.when", "audit.who", "audit.what", "audit.case", "audit.outcome"]
      .map((key) => el("th", { scope: "col" }, t(key))))),
    el("tbody", {}, ...entries.slice().reverse().map((entry) => el("tr", { testid: "audit-row" },
      el("td", {}, String(entry.sequence)), el("td", {}, when(entry.at_ms)), el("td", {}, entry.actor.user_name),
      el("td", {}, entry.action), el("td", {}, entry.case_ref ?? ""), el("td", {}, entry.outcome.kind)))));
}

// --- Admin ----------------------------------------------------------------------------------

async function admin(context) {
  const cameras = await call("GET", "/v1/cameras");
  const users = await call("GET", "/v1/users");
  fill(context.main, heading("admin.title"),
    el("h2", {}, t("admin.cameras")),
    el("div", { class: "list" }, ...cameras.map((camera) => el("div", { class: "row", testid: "admin-camera-row" },
      el("span", {}, camera.config.id), el("span", {}, camera.config.url), el("span", {}, camera.status.state)))),
    el("h2", {}, t("admin.users")),
    el("div", { class: "list" }, ...users.map((user) => el("div", { class: "row", testid: "admin-user-row" },
      el("span", {}, user.name), el("span", {}, user.roles.join(", ")),
      el("span", {}, user.disabled ? t("admin.disabled") : "")))));
}
