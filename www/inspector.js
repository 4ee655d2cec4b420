// The inspector page: runs a small agent workflow over IndexedDB in this tab
// and shows what Waymark stored. Imports the built web package.
import { open, indexedDbStorage } from "../pkg/dist/web/index.js";

const dbKey = "waymark-inspector-db";
let dbName = localStorage.getItem(dbKey) ?? `waymark-inspector-${Date.now()}`;
localStorage.setItem(dbKey, dbName);
document.getElementById("db").textContent = dbName;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
const show = (v) => (v === undefined ? "—" : esc(JSON.stringify(v)));
const preview = (v) => { const j = JSON.stringify(v); return esc(j.length > 60 ? `${j.slice(0, 60)}…` : j); };
const time = (t) => (t === undefined ? "" : new Date(t).toLocaleTimeString());

let store = await open({ storage: indexedDbStorage(dbName) });

async function agent({ crash }) {
  const run = await store.run({ workflow: "research", id: "market_q1", scope: { project: "acme" }, input: { q: "EU heat pumps" }, leaseMs: 2_000 });
  const scope = await store.scope({ project: "acme" });
  const tool = async (name, out) => { await new Promise((r) => setTimeout(r, 150)); return out; };
  await run.step("plan", () => tool("plan", ["search", "summarize"]));
  const hits = await run.step("search", () => tool("search", [{ url: "https://www.iea.org/heat-pumps", relevance: 0.92 }]), { ttlMs: 60_000 });
  await scope.transact(hits.map((h, i) => ({ entity: `result:${i}`, type: "SearchResult", set: h, ttlMs: 60_000 })), { cause: "turn:2", actor: "assistant" });
  if (crash) {
    // Leave `summarize` in progress, as a closed tab would; its 2 s lease lapses.
    run.step("summarize", () => new Promise(() => {}));
    await new Promise((r) => setTimeout(r, 300));
    $("status").textContent = "Crashed inside `summarize` (its step is left in progress). Wait 2 s, then run again.";
    store = await open({ storage: indexedDbStorage(dbName) }); // a fresh "process"
    return;
  }
  const summary = await run.step("summarize", () => tool("summarize", `${hits.length} source(s): growing`), { retry: { max: 3 } });
  await scope.set("report:q1", { status: "draft", summary }, { cause: "turn:3", actor: "assistant" }, { type: "Report" });
  $("status").textContent = "Done. Completed steps were not repeated.";
}

async function render() {
  const runs = await store.runs();
  $("runs").innerHTML = "<tr><th>workflow</th><th>id</th><th>status</th><th>created</th><th>updated</th></tr>" +
    runs.map((r) => `<tr><td>${esc(r.workflow)}</td><td>${esc(r.id)}</td><td>${r.status}</td><td>${time(r.createdAt)}</td><td>${time(r.updatedAt)}</td></tr>`).join("");
  const scope = await store.scope({ project: "acme" });
  await scope.refresh();
  if (runs.length) {
    const run = await store.run({ workflow: "research", id: "market_q1", scope: { project: "acme" } });
    $("timeline").innerHTML = "<tr><th>at</th><th>step</th><th>transition</th><th>attempt</th><th>cause</th></tr>" +
      run.transitions().map((t) => `<tr><td>${time(t.at)}</td><td>${esc(t.step)}</td><td>${t.from} → <span class="state-${t.to}">${t.to}</span></td><td>${t.attempt}</td><td class="mono">${esc(t.cause)}</td></tr>`).join("");
  }
  $("entities").innerHTML = "<tr><th>entity</th><th>type</th><th>attributes</th></tr>" +
    scope.entities().map((e) => `<tr><td class="mono">${esc(e.id)}</td><td>${esc(e.type ?? "")}</td><td>${Object.entries(e.attributes)
      .map(([k, v]) => `<span class="attr mono" data-e="${esc(e.id)}" data-a="${esc(k)}">${esc(k)}</span>=${preview(v)}`).join(", ")}</td></tr>`).join("");
  for (const el of document.querySelectorAll(".attr")) el.onclick = () => history(scope, el.dataset.e, el.dataset.a);
}

function history(scope, e, a) {
  const why = scope.why(e, a);
  $("history").innerHTML = `<tr><th colspan="6">${esc(e)}.${esc(a)} — current value from seq ${why?.seq ?? "—"} (${esc(why?.cause ?? "")})</th></tr>` +
    "<tr><th>seq</th><th>at</th><th>value</th><th>cause</th><th>actor</th><th>valid until</th></tr>" +
    scope.history(e, a).map((v) => `<tr><td>${v.seq}</td><td>${time(v.at)}</td><td class="mono">${v.retracted ? "<i>retracted</i>" : show(v.value)}</td><td class="mono">${esc(v.cause)}</td><td>${esc(v.actor ?? "")}</td><td>${time(v.validUntil)}</td></tr>`).join("");
}

const guard = (f) => async () => {
  try { await f(); } catch (e) { $("status").textContent = `${e.code ?? "Error"}: ${e.message}`; }
  await render();
};
$("run").onclick = guard(() => agent({ crash: false }));
$("crash").onclick = guard(() => agent({ crash: true }));
$("refresh").onclick = guard(async () => {});
$("wipe").onclick = () => { localStorage.removeItem(dbKey); location.reload(); };
await render();
window.waymarkInspectorReady = true;
