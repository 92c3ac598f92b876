"""The viewer page: one self-contained HTML file (jinja2 template, Plotly's JS bundled inline).

The runs' data is embedded as JSON; a small script draws the curves with Plotly and walks the
episodes (no server needed: the file opens from disk, offline). The WM panel colours each
target token by p: green above ρ (learned: the clipped MAE gives it no gradient), red at or
below ε (little gradient: treated as noise), amber in between (where the WM loss acts); the
shade follows p.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pawkit.protocol import UsageError
from pawkit.view.data import summary

CURVES = [  # (metrics key, title): each a chart, every run a trace
    ("rollout/success_rate", "success rate"), ("rollout/mean_return", "mean return"),
    ("rollout/invalid_action_rate", "invalid-action rate"), ("paw/wm_token_accuracy", "WM token accuracy"),
    ("paw/wm_target_prob", "WM target probability"), ("paw/lambda_mean", "λ mean"),
    ("paw/selected_fraction", "PaW selected fraction"),
]
EVAL_OF = {"rollout/success_rate": "eval/success_rate", "rollout/mean_return": "eval/mean_return",
           "rollout/invalid_action_rate": "eval/invalid_action_rate"}
EPSILON = 0.01  # pawkit.train.paw.ACTIVITY_EPSILON (the view layer reads files, not the trainer)


def plotly_js() -> str:
    """Plotly's minified bundle (the ``plotly`` package ships it); one line hint if missing."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        raise UsageError("pawkit view needs plotly: pip install 'pawkit[view]'") from None
    return get_plotlyjs()


def render(runs: list[dict[str, Any]]) -> str:
    """The page for ``runs`` (``pawkit.view.data.load_run`` dicts) as one HTML string."""
    import jinja2

    for run in runs:
        run["summary"] = summary(run["config"])
        run["rho"] = (run["config"].get("paw") or {}).get("rho", 0.2)
    data = {"runs": runs, "curves": CURVES, "eval_of": EVAL_OF, "eps": EPSILON}
    env = jinja2.Environment(autoescape=True)
    payload = json.dumps(data).replace("</", "<\\/")  # safe inside <script>
    return env.from_string(TEMPLATE).render(runs=runs, data=jinja2.utils.markupsafe.Markup(payload),
                                            plotly=jinja2.utils.markupsafe.Markup(plotly_js()))


def write(runs: list[dict[str, Any]], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(runs), encoding="utf-8")
    return path


TEMPLATE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pawkit view: {{ runs|map(attribute='name')|join(', ') }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:1em 2em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:1.4em}
table.cfg td,table.cfg th{padding:2px 8px;border-bottom:1px solid #eee;text-align:left;font-size:.9em}
#curves{display:grid;grid-template-columns:repeat(auto-fill,minmax(360px,1fr));gap:8px}
.chart{height:240px}
.turn{border:1px solid #ddd;border-radius:6px;margin:8px 0;padding:8px}
.turn pre{white-space:pre-wrap;margin:2px 0;background:#f7f7f7;padding:4px;font-size:.85em}
.facts span{margin-right:1em;font-size:.9em}
.wm{display:grid;grid-template-columns:1fr 1fr;gap:8px}
.tokens{font-family:monospace;font-size:.85em;white-space:pre-wrap;line-height:1.6}
.tok{border-radius:2px}
.tok.learned{outline:1px solid #2a2}.tok.noise{outline:1px dotted #c33}.tok.active{outline:1px solid #d90}
.tok.miss{text-decoration:underline wavy #555}
.legend span{margin-right:1em;padding:0 4px}
</style>
<script>{{ plotly }}</script></head>
<body>
<h1>pawkit view</h1>
<h2>Runs</h2>
<table class="cfg"><tr><th>run</th>{% for k in runs[0].summary %}<th>{{ k }}</th>{% endfor %}</tr>
{% for r in runs %}<tr><td title="{{ r.path }}">{{ r.name }}</td>{% for v in r.summary.values() %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>
<div id="curves"></div>
<h2>Episodes</h2>
<label>run <select id="run"></select></label>
<label>step <select id="step"></select></label>
<label>episode <select id="episode"></select></label>
<span id="episode-count"></span>
<div id="episode-head"></div>
<div class="legend">WM target tokens, shaded by the probability the model gave them:
<span class="tok learned" style="background:#bfb">p &gt; ρ: learned, no gradient</span>
<span class="tok active" style="background:#fd8">ε &lt; p ≤ ρ: the WM loss acts</span>
<span class="tok noise" style="background:#fbb">p ≤ ε: little gradient (noise)</span>
<span class="tok miss">wavy: argmax ≠ target</span></div>
<div id="turns"></div>
<script>
const DATA = {{ data }};
const $ = id => document.getElementById(id);
function esc(s){return String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));}
function fmt(x, d=3){return (x === undefined || x === null) ? "–" : (typeof x === "number" ? x.toFixed(d) : String(x));}
function drawCurves(){
  const box = $("curves");
  DATA.curves.forEach(([key, title], i) => {
    const traces = [];
    DATA.runs.forEach(run => {
      const pts = run.metrics.filter(m => key in m);
      if (pts.length) traces.push({x: pts.map(m => m.step), y: pts.map(m => m[key]), name: run.name, mode: "lines+markers", type: "scatter"});
      const ek = DATA.eval_of[key];
      const ev = ek ? run.metrics.filter(m => ek in m) : [];
      if (ev.length) traces.push({x: ev.map(m => m.step), y: ev.map(m => m[ek]), name: run.name + " eval", mode: "markers", type: "scatter", marker: {symbol: "diamond", size: 9}});
    });
    if (!traces.length) return;
    const div = document.createElement("div"); div.className = "chart"; div.id = "chart-" + i; box.appendChild(div);
    Plotly.newPlot(div, traces, {title: {text: title, font: {size: 13}}, margin: {l: 40, r: 10, t: 30, b: 30}, xaxis: {title: {text: "step"}}, showlegend: DATA.runs.length > 1}, {displayModeBar: false, responsive: true});
  });
}
function colour(p, rho){
  if (p > rho) return `hsl(120,60%,${90 - 35 * Math.min(1, (p - rho) / Math.max(1e-9, 1 - rho))}%)`;
  if (p <= DATA.eps) return `hsl(0,70%,${92 - 20 * (1 - p / DATA.eps)}%)`;
  return `hsl(40,95%,${85 - 30 * (p - DATA.eps) / Math.max(1e-9, rho - DATA.eps)}%)`;
}
function tokens(wm, rho){
  return wm.tokens.map((t, k) => {
    const p = wm.p[k], region = p > rho ? "learned" : (p <= DATA.eps ? "noise" : "active");
    return `<span class="tok ${region}${wm.correct[k] ? "" : " miss"}" style="background:${colour(p, rho)}" title="p=${p.toFixed(4)}">${esc(t)}</span>`;
  }).join("");
}
function options(sel, values, labels){sel.innerHTML = values.map((v, i) => `<option value="${esc(v)}">${esc(labels ? labels[i] : v)}</option>`).join("");}
function run(){return DATA.runs[+$("run").value];}
function episodes(){return run().steps[$("step").value] || [];}
function pickRun(){
  const steps = Object.keys(run().steps).sort((a, b) => a - b);
  options($("step"), steps, steps.map(s => "step " + s)); pickStep();
}
function pickStep(){
  const eps = episodes();
  options($("episode"), eps.map((_, i) => i), eps.map((e, i) => `${i}: ${e.task_id} ${e.success ? "✓" : "✗"} return ${fmt(e["return"], 2)}`));
  $("episode-count").textContent = `${eps.length} episodes`;
  show();
}
function show(){
  const e = episodes()[+$("episode").value], rho = run().rho;
  if (!e){$("turns").innerHTML = "<p>no dumped episodes (trainer.dump_trajectories_every)</p>"; $("episode-head").innerHTML = ""; return;}
  $("episode-head").innerHTML = `<p>env <b>${esc(e.env)}</b> · task <b>${esc(e.task_id)}</b> · group ${esc(e.group_id)} · return <b>${fmt(e["return"], 2)}</b> · success <b>${e.success}</b> · end reason <b>${esc(e.end_reason)}</b> · ${e.transitions.length} turns</p>`;
  $("turns").innerHTML = e.transitions.map((t, k) => {
    const v = t.view || {}, wm = v.wm;
    const facts = [["reward", fmt(t.reward, 2)], ["advantage", fmt(v.advantage)], ["action entropy", fmt(v.entropy)],
      ["PaW selected", v.selected === undefined ? "–" : v.selected], ["λ_g", fmt(v["lambda"])], ["valid", t.action.valid], ["done", t.done]];
    let wmHtml = "";
    if (wm) {
      const mean = wm.p.reduce((a, b) => a + b, 0) / Math.max(1, wm.p.length), acc = wm.correct.filter(x => x).length / Math.max(1, wm.correct.length);
      wmHtml = `<div class="wm"><div><b>real next observation</b> (mean p ${fmt(mean)}, argmax accuracy ${fmt(acc)})<div class="tokens wm-real">${tokens(wm, rho)}</div></div>` +
        `<div><b>model's greedy prediction</b><pre class="wm-pred">${wm.predicted ? esc(wm.predicted) : "(empty: the model ended its prediction at once)"}</pre></div></div>`;
    }
    return `<div class="turn"><b>turn ${k}</b><div class="facts">${facts.map(([a, b]) => `<span>${a}: <b>${esc(b)}</b></span>`).join("")}</div>` +
      `<div>observation</div><pre>${esc(t.observation.text)}</pre><div>raw reply</div><pre>${esc(t.action.raw)}</pre>` +
      `<div>parsed action: <b>${esc(t.action.command)}</b>${t.action.parse_error ? " (" + esc(t.action.parse_error) + ")" : ""}</div>${wmHtml}</div>`;
  }).join("");
}
options($("run"), DATA.runs.map((_, i) => i), DATA.runs.map(r => r.name));
$("run").onchange = pickRun; $("step").onchange = pickStep; $("episode").onchange = show;
drawCurves(); pickRun();
</script></body></html>
"""
