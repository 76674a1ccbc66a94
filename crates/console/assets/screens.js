// The screens. Each renders into context.main from API answers; `needs` lists the permissions
// (any of them) that make the screen worth offering.

import { call, imageUrl, ApiProblem } from "./api.js";
import { el, fill, rateInWords, say, t, when } from "./dom.js";

export const SCREENS = [
  { id: "live", needs: ["ViewCameras"], render: live },
  { id: "alerts", needs: ["ViewAlerts"], render: alerts },
  { id: "search", needs: ["Search"], render: search },
  { id: "subjects", needs: ["Enrol"], render: subjects },
  { id: "cases", needs: ["ManageCases", "ManageWatchlists"], render: cases },
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

async function live(context, [cameraId]) {
  if (cameraId) return watch(context, cameraId);
  const canWatch = context.me.permissions.includes("MonitorAllCameras");
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
            faces: camera.analysis.faces, ms: camera.analysis.analysis_ms_per_frame.toFixed(1) }))
          : null,
        canWatch && camera.analysis
          ? el("a", { href: `#/live/${encodeURIComponent(status.id)}`, testid: "camera-watch" }, t("live.watch")) : null,
      );
    }));
    if (cameras.length === 0) grid.append(el("p", {}, t("live.none")));
  };
  await refresh();
  const timer = setInterval(() => refresh().catch(() => {}), 2000);
  context.onLeave(() => clearInterval(timer));
}

/** One camera's live picture with the tracked faces boxed, refreshed twice a second. */
async function watch(context, cameraId) {
  const picture = el("img", { testid: "live-picture", alt: t("live.picture_alt", { camera: cameraId }) });
  const faces = el("span", { testid: "live-faces" }, "…");
  const age = el("span", { class: "muted" });
  fill(context.main,
    el("p", {}, el("a", { href: "#/live" }, t("live.back"))),
    el("h1", {}, t("live.watching", { camera: cameraId })),
    el("p", {}, t("live.faces"), " ", faces, " ", age),
    el("div", { class: "live" }, picture),
    el("p", { class: "muted" }, t("live.legend")));
  let stopped = false;
  let shown = null;
  context.onLeave(() => {
    stopped = true;
    if (shown) URL.revokeObjectURL(shown);
  });
  while (!stopped) {
    const asked = performance.now();
    try {
      const response = await fetch(`/v1/cameras/${encodeURIComponent(cameraId)}/live.jpg`, { credentials: "same-origin" });
      if (response.ok) {
        const url = URL.createObjectURL(await response.blob());
        picture.src = url;
        if (shown) URL.revokeObjectURL(shown);
        shown = url;
        faces.textContent = response.headers.get("x-vigil-faces") ?? "?";
        const at = Number(response.headers.get("x-vigil-frame-at"));
        age.textContent = at ? t("live.age", { seconds: ((Date.now() - at) / 1000).toFixed(1) }) : "";
      } else if (response.status === 401) {
        context.expired();
        return;
      }
    } catch (_) {
      // a dropped request: the next one follows
    }
    const wait = Math.max(0, 500 - (performance.now() - asked));
    await new Promise((resolve) => setTimeout(resolve, wait));
  }
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
      document.removeEventListener("keydown", onKey);
      await review(context, alertId);
    } catch (problem) {
      error.hidden = false;
      error.textContent = problemText(problem);
    }
  };
  const open = alert.state === "candidate";
  // A reviewer's queue by keyboard: Alt+C confirms, Alt+R rejects (also while typing the
  // comment), N goes to the next alert awaiting review.
  const onKey = async (event) => {
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(document.activeElement?.tagName);
    if (open && event.altKey && (event.key === "c" || event.key === "C")) {
      event.preventDefault();
      await decide("confirm")();
    } else if (open && event.altKey && (event.key === "r" || event.key === "R")) {
      event.preventDefault();
      await decide("reject")();
    } else if (!typing && !event.altKey && !event.ctrlKey && (event.key === "n" || event.key === "N")) {
      const waiting = (await call("GET", "/v1/alerts")).filter((v) => v.alert.state === "candidate" && v.alert.id !== alert.id);
      if (waiting.length) location.hash = `#/alerts/${waiting[0].alert.id}`;
      else say(t("review.queue_empty"));
    }
  };
  document.addEventListener("keydown", onKey);
  context.onLeave(() => document.removeEventListener("keydown", onKey));
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
    el("p", { class: "muted" }, t("review.keys")),
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

// --- Cases and watchlists ------------------------------------------------------------------

/** Unix ms of the end of the day chosen in a date input (local time). */
function endOfDay(dateInput) {
  const [year, month, day] = dateInput.value.split("-").map(Number);
  return new Date(year, month - 1, day, 23, 59, 59).getTime();
}

function formError() {
  return el("p", { class: "error", role: "alert", hidden: true });
}

function showError(node, problem) {
  node.hidden = false;
  node.textContent = typeof problem === "string" ? problem : problemText(problem);
}

async function cases(context) {
  const caseList = el("div", { class: "list" });
  const listList = el("div", { class: "list" });
  const reload = async () => {
    const [found, lists] = await Promise.all([call("GET", "/v1/cases"), call("GET", "/v1/watchlists")]);
    const now = Date.now();
    fill(caseList, ...found.map((c) => {
      const open = c.closed_at_ms === null && now < c.expires_at_ms;
      const close = c.owner === context.me.name && open
        ? el("button", { type: "button", testid: "case-close", onclick: async () => {
          try {
            await call("POST", `/v1/cases/${encodeURIComponent(c.reference)}/close`);
            await reload();
          } catch (problem) { say(problemText(problem)); }
        } }, t("cases.close")) : null;
      return el("div", { class: "row", testid: "case-row", "data-case": c.reference },
        el("strong", {}, c.reference), el("span", {}, c.purpose), el("span", {}, c.legal_basis),
        el("span", {}, t("cases.owner", { owner: c.owner })),
        el("span", {}, c.members.length ? t("cases.members", { members: c.members.join(", ") }) : ""),
        el("span", { testid: "case-expiry" }, open ? t("cases.expires", { at: when(c.expires_at_ms) }) : t("cases.closed")),
        close);
    }));
    if (!found.length) caseList.append(el("p", {}, t("cases.none")));
    fill(listList, ...lists.map((list) => el("div", { class: "row", testid: "watchlist-row" },
      el("strong", {}, list.name), el("span", {}, list.description ?? ""),
      el("span", {}, t("watchlists.threshold", { words: rateInWords(list.false_match_rate) })))));
    if (!lists.length) listList.append(el("p", {}, t("watchlists.none")));
    fill(entryList, ...lists.map((list) => el("option", { value: list.id }, list.name)));
  };

  // Open a case: purpose, legal basis and expiry are required; no case is open-ended.
  const reference = el("input", { id: "case-reference", testid: "case-reference", required: true });
  const purpose = el("input", { id: "case-purpose", testid: "case-purpose", required: true });
  const basis = el("input", { id: "case-basis", testid: "case-basis", required: true });
  const expires = el("input", { id: "case-expires", testid: "case-expires", type: "date", required: true });
  const members = el("input", { id: "case-members", testid: "case-members" });
  const caseError = formError();
  const caseForm = el("form", { class: "form", onsubmit: async (event) => {
    event.preventDefault();
    caseError.hidden = true;
    try {
      await call("POST", "/v1/cases", { body: {
        reference: reference.value.trim(), purpose: purpose.value.trim(), legal_basis: basis.value.trim(),
        expires_at_ms: endOfDay(expires),
        members: members.value.split(",").map((m) => m.trim()).filter(Boolean),
      } });
      caseForm.reset();
      await reload();
    } catch (problem) { showError(caseError, problem); }
  } },
  el("label", { for: "case-reference" }, t("cases.reference")), reference,
  el("label", { for: "case-purpose" }, t("cases.purpose")), purpose,
  el("label", { for: "case-basis" }, t("cases.basis")), basis,
  el("label", { for: "case-expires" }, t("cases.expiry")), expires,
  el("label", { for: "case-members" }, t("cases.member_names")), members,
  el("button", { type: "submit", testid: "case-submit" }, t("cases.open")), caseError);

  // A watchlist and its threshold, bounded by the configured ceiling (the API refuses looser).
  const listName = el("input", { id: "watchlist-name", testid: "watchlist-name", required: true });
  const listDescription = el("input", { id: "watchlist-description" });
  const listRate = el("select", { id: "watchlist-rate", testid: "watchlist-rate" },
    ...[1e-4, 1e-5, 1e-6].map((rate) => el("option", { value: rate, selected: rate === 1e-5 }, rateInWords(rate))));
  const listError = formError();
  const listForm = el("form", { class: "form", onsubmit: async (event) => {
    event.preventDefault();
    listError.hidden = true;
    try {
      await call("POST", "/v1/watchlists", { body: {
        name: listName.value.trim(), description: listDescription.value.trim() || null,
        false_match_rate: Number(listRate.value),
      } });
      listForm.reset();
      await reload();
    } catch (problem) { showError(listError, problem); }
  } },
  el("label", { for: "watchlist-name" }, t("watchlists.name")), listName,
  el("label", { for: "watchlist-description" }, t("watchlists.description")), listDescription,
  el("label", { for: "watchlist-rate" }, t("watchlists.rate")), listRate,
  el("button", { type: "submit", testid: "watchlist-submit" }, t("watchlists.create")), listError);

  // An entry: who, from which photos, under which case, on what legal basis, answered for by
  // whom, until when. Every field is required.
  const entryList = el("select", { id: "entry-list", testid: "entry-list" });
  const entryCase = el("input", { id: "entry-case", testid: "entry-case", required: true });
  const entryName = el("input", { id: "entry-name", testid: "entry-name", required: true });
  const entryPhotos = el("input", { id: "entry-photos", testid: "entry-photos", type: "file", accept: "image/*", multiple: true, required: true });
  const entryBasis = el("input", { id: "entry-basis", testid: "entry-basis", required: true });
  const entryResponsible = el("input", { id: "entry-responsible", testid: "entry-responsible", required: true });
  const entryExpires = el("input", { id: "entry-expires", testid: "entry-expires", type: "date", required: true });
  const entryResult = el("p", { role: "status", testid: "entry-result" });
  const entryError = formError();
  const entryForm = el("form", { class: "form", onsubmit: async (event) => {
    event.preventDefault();
    entryError.hidden = true;
    entryResult.textContent = "";
    const body = new FormData();
    body.append("name", entryName.value.trim());
    body.append("legal_basis", entryBasis.value.trim());
    body.append("responsible", entryResponsible.value.trim());
    body.append("expires_at_ms", String(endOfDay(entryExpires)));
    for (const file of entryPhotos.files) body.append("image", file);
    try {
      const entry = await call("POST", `/v1/watchlists/${encodeURIComponent(entryList.value)}/entries`, {
        body, headers: { "X-Vigil-Case": entryCase.value.trim() } });
      entryResult.textContent = t("entries.added", { name: entry.subject_name, at: when(entry.expires_at_ms) });
      entryForm.reset();
    } catch (problem) { showError(entryError, problem); }
  } },
  el("label", { for: "entry-list" }, t("entries.list")), entryList,
  el("label", { for: "entry-case" }, t("entries.case")), entryCase,
  el("label", { for: "entry-name" }, t("entries.name")), entryName,
  el("label", { for: "entry-photos" }, t("entries.photos")), entryPhotos,
  el("label", { for: "entry-basis" }, t("entries.basis")), entryBasis,
  el("label", { for: "entry-responsible" }, t("entries.responsible")), entryResponsible,
  el("label", { for: "entry-expires" }, t("entries.expiry")), entryExpires,
  el("button", { type: "submit", testid: "entry-submit" }, t("entries.add")), entryResult, entryError);

  const permissions = new Set(context.me.permissions);
  fill(context.main, heading("cases.title"), caseList,
    permissions.has("ManageCases") ? [el("h2", {}, t("cases.open_title")), caseForm] : null,
    el("h2", {}, t("watchlists.title")), listList,
    permissions.has("ManageWatchlists")
      ? [el("h2", {}, t("watchlists.create_title")), listForm, el("h2", {}, t("entries.title")), entryForm] : null);
  await reload();
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
