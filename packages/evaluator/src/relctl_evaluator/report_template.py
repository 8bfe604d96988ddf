"""The Jinja2 template of `relctl report`'s page (kept in a module, so that every install ships it).

Rendered with autoescape on: every value is escaped but the figures and the plot library, which
report_html.py marks safe (Plotly writes its figures' data as JSON with ``<`` and ``/`` escaped)."""

PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>relctl report: {{ title }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px; padding: 1rem 2rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2rem; margin-top: 2.5rem; } h3 { margin-top: 1.8rem; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.baseline td { color: #666; } tr.best td { font-weight: 600; }
.mark { display: inline-block; padding: 0 .35rem; border-radius: .3rem; font-size: .8rem; margin-right: .2rem; }
.mark.best { background: #d6f5d6; } .mark.tied { background: #fff3c4; } .mark.beats { background: #d6f5d6; } .mark.not-beaten { background: #fbd5d5; }
.note { color: #555; font-size: .9rem; } .missing { background: #fff3c4; padding: .5rem 1rem; border-left: 4px solid #e0b000; }
pre { background: #f7f7f7; padding: .8rem; overflow-x: auto; font-size: .85rem; }
nav li { margin: .2rem 0; } .figure { margin: .5rem 0 1.5rem; }
</style>
<script>{{ plotly_js }}</script>
</head>
<body>
<h1>relctl report: {{ title }}</h1>
<p class="note">Generated {{ report.generated_at }} UTC. Intervals are 95 % query-grouped bootstrap intervals
({{ report.resamples }} resamples, seed {{ report.seed }}) of the CV mean over folds; the marks come from paired
comparisons on the same resamples.</p>
<nav><ul>
{% if report.combined %}<li><a href="#combined">Combined leaderboard</a></li>{% endif %}
{% for e in report.experiments %}<li><a href="#experiment-{{ e.id }}">Experiment {{ e.id }}: {{ e.name }}</a>:
{% for part, words in sections %}<a href="#{{ part }}-{{ e.id }}">{{ words }}</a>{% if not loop.last %} · {% endif %}{% endfor %}</li>
{% endfor %}
</ul></nav>

{% macro interval(value, low, high) -%}
{{ value | fixed }} [{{ low | fixed }}, {{ high | fixed }}]
{%- endmacro %}

{% macro board_table(rows, with_experiment=False) %}
<table class="leaderboard">
<thead><tr>{% if with_experiment %}<th>experiment</th>{% endif %}<th>rank</th><th>run</th><th>kind</th><th>mode</th><th>{{ rows[0].metric if rows else "" }} [95 % interval]</th><th>rows</th><th>queries</th><th>against the best</th><th>against the better baseline</th></tr></thead>
<tbody>
{% for r in rows %}
<tr class="{{ r.kind }}{% if r.best %} best{% endif %}" data-run-id="{{ r.run_id }}" data-task="{{ r.task }}" data-metric="{{ r.metric }}"
    data-value="{{ r.value }}" data-low="{{ r.low }}" data-high="{{ r.high }}" data-tied="{{ r.tied_with_best | lower }}"
    data-beats-baseline="{{ r.beats_baseline }}">
{% if with_experiment %}<td>{{ r.experiment_id }} {{ r.experiment }}</td>{% endif %}
<td class="num">{{ r.rank }}{% if r.group %} (split {{ r.group + 1 }}){% endif %}</td>
<td>{{ r.run }}</td><td>{{ r.kind }}</td><td>{{ r.mode or "" }}</td>
<td class="num interval">{{ interval(r.value, r.low, r.high) }}</td>
<td class="num">{{ r.rows }}</td><td class="num">{{ r.queries }}</td>
<td>{% if r.best %}<span class="mark best">best</span>
{% elif r.vs_best and not r.vs_best.comparable %}<span class="note">not comparable: {{ r.vs_best.why }}</span>
{% elif r.tied_with_best %}<span class="mark tied">not distinguishable from the best</span> <span class="note">{{ r.vs_best.difference | signed }} [{{ r.vs_best.low | signed }}, {{ r.vs_best.high | signed }}]</span>
{% elif r.vs_best %}<span class="note">below the best: {{ r.vs_best.difference | signed }} [{{ r.vs_best.low | signed }}, {{ r.vs_best.high | signed }}]</span>{% endif %}</td>
<td>{% if r.kind != "baseline" %}<span class="mark {{ 'beats' if r.beats_baseline else 'not-beaten' }}">{{ "beats it" if r.beats_baseline else "not beaten" }}</span> {{ r.note }}{% else %}<span class="note">baseline</span>{% endif %}</td>
</tr>
{% endfor %}
</tbody></table>
{% endmacro %}

{% if report.combined %}
<section id="combined" class="combined">
<h2>Combined leaderboard: {{ report.metric }}</h2>
<p class="note">Every experiment's runs together; each run's marks compare it with the runs of its own experiment scored on the same folds.</p>
{% for task, rows in report.combined | groupby("task") %}
<h3>{{ task }}</h3>
{{ board_table(rows, with_experiment=True) }}
{% endfor %}
</section>
{% endif %}

{% for e in report.experiments %}
<section id="experiment-{{ e.id }}" class="experiment" data-experiment-id="{{ e.id }}">
<h2>Experiment {{ e.id }}: {{ e.name }}</h2>
<p>Status <b>{{ e.status }}</b>; created {{ e.created }}{% if e.finished %}, finished {{ e.finished }}{% endif %}; spec {{ e.spec_path or "(none)" }}.</p>
{% if e.error %}<p class="missing">Error: {{ e.error }}</p>{% endif %}
{% if e.missing %}<div class="missing" id="missing-{{ e.id }}"><b>Missing from this report:</b><ul>{% for m in e.missing %}<li>{{ m }}</li>{% endfor %}</ul></div>{% endif %}

<section id="leaderboard-{{ e.id }}" class="leaderboard-section">
<h3>Leaderboard</h3>
{% if not e.scored %}<p class="missing">No run of this experiment has been scored yet.</p>{% endif %}
{% for metric, rows in e.boards.items() %}
{% for task, task_rows in rows | groupby("task") %}
<h4>{{ task }}: {{ metric }}</h4>
{{ board_table(task_rows) }}
{% endfor %}
{% endfor %}
</section>

<section id="curves-{{ e.id }}" class="curves-section">
<h3>ROC and precision-recall curves</h3>
<p class="note">Out-of-fold rows of every run, pooled over its folds, baselines on the same axes.</p>
{% for t in e.tasks %}<h4>{{ t.task }}</h4>{{ figures["roc-%s-%s" % (e.id, t.task)] }}{{ figures["pr-%s-%s" % (e.id, t.task)] }}{% endfor %}
</section>

<section id="thresholds-{{ e.id }}" class="thresholds-section">
<h3>F1 against the threshold, and the confusion matrix at the out-of-fold thresholds</h3>
<p class="note">The curve is F1 over all out-of-fold rows at each threshold, the tuned thresholds marked. The confusion matrix
scores the rows as F1@oof does: each row at the threshold tuned on the other half of its fold, never at one tuned on itself.</p>
{% for t in e.tasks %}{% for th in t.thresholds %}
<h4>{{ t.task }}: {{ th.run }}</h4>
<p class="note">Threshold {{ th.threshold | fixed }} ({{ th.threshold_source }}){% if th.fold_thresholds %}; per fold (threshold@oof):
{% for fold, value in th.fold_thresholds.items() %}fold {{ fold }} {{ value | fixed }}{% if not loop.last %}, {% endif %}{% endfor %}{% endif %}.</p>
{{ figures["threshold-%s-%s-%s" % (e.id, t.task, th.run_id)] }}
<table class="confusion" data-run-id="{{ th.run_id }}" data-task="{{ t.task }}" data-threshold="{{ th.threshold }}"
  data-tn="{{ th.confusion.tn }}" data-fp="{{ th.confusion.fp }}" data-fn="{{ th.confusion.fn }}" data-tp="{{ th.confusion.tp }}">
<tr><th></th><th>predicted not relevant</th><th>predicted relevant</th></tr>
<tr><th>not relevant</th><td class="num">{{ th.confusion.tn }}</td><td class="num">{{ th.confusion.fp }}</td></tr>
<tr><th>relevant</th><td class="num">{{ th.confusion.fn }}</td><td class="num">{{ th.confusion.tp }}</td></tr>
</table>
{% else %}<p class="note">{{ t.task }}: no model run was scored.</p>{% endfor %}{% endfor %}
</section>

<section id="languages-{{ e.id }}" class="languages-section">
<h3>Per language</h3>
{% for t in e.tasks %}
<h4>{{ t.task }}</h4>
{{ figures["languages-%s-%s-f1@oof" % (e.id, t.task)] }}{{ figures["languages-%s-%s-roc_auc" % (e.id, t.task)] }}
<table class="languages">
<thead><tr><th>run</th><th>language</th><th>F1@oof [95 %]</th><th>ROC-AUC [95 %]</th>{% if t.chrf %}<th>chrF (translator)</th>{% endif %}</tr></thead>
<tbody>
{% for run in t.languages.runs %}{% for language in t.languages.languages %}
{% set f1 = run.metrics["f1@oof"].get(language) %}{% set auc = run.metrics["roc_auc"].get(language) %}
<tr data-run-id="{{ run.run_id }}" data-language="{{ language }}" data-f1="{{ f1.value if f1 else '' }}" data-roc-auc="{{ auc.value if auc else '' }}">
<td>{{ run.run }}</td><td>{{ language }}</td>
<td class="num">{% if f1 %}{{ interval(f1.value, f1.low, f1.high) }}{% endif %}</td>
<td class="num">{% if auc %}{{ interval(auc.value, auc.low, auc.high) }}{% endif %}</td>
{% if t.chrf %}<td class="num">{{ t.chrf.get(language) | fixed(1) if run.mode and run.mode != "orig" else "" }}</td>{% endif %}
</tr>
{% endfor %}{% endfor %}
</tbody></table>
<h5>Translation quality against the F1 gain</h5>
{% if not t.translated %}<p class="note chrf-na">Does not apply: no translator ran for {{ t.task }} in this experiment.</p>
{% elif not t.gains %}<p class="note chrf-na">Does not apply: no run that reads translations has a twin in mode orig (the same settings otherwise), or no chrF was measured.</p>
{% else %}{{ figures["chrf-gain-%s-%s" % (e.id, t.task)] }}{% endif %}
{% endfor %}
</section>

<section id="training-{{ e.id }}" class="training-section">
<h3>Training curves</h3>
<p class="note">Per fold: the training loss as the trainer reported it (the mean over the steps since its previous report,
at most one report every few seconds, and the last step), and the validation loss, F1@0.5 and ROC-AUC after each epoch.</p>
{% for run in e.training %}<h4>{{ run.run }}</h4>{{ figures["training-%s-%s" % (e.id, run.run_id)] }}
{% else %}<p class="note">No model run finished its training.</p>{% endfor %}
</section>

<section id="split-{{ e.id }}" class="split-section">
<h3>Split audit</h3>
{% for s in e.splits %}
<h4>{{ s.label }}</h4>
<p>Query leakage {{ s.query_leakage | fixed }}, group leakage {{ s.group_leakage | fixed }}, fold size ratio {{ s.size_ratio | fixed }},
positive rate spread {{ s.positive_rate_spread | fixed }} (strategy {{ s.strategy }}, category depth {{ s.category_depth }}, seed {{ s.seed }}).</p>
<table class="split-audit" data-stage-id="{{ s.stage_id }}" data-task="{{ s.task }}">
<thead><tr><th>fold</th><th>scored</th><th>rows</th><th>positive rate</th><th>query leakage</th><th>group leakage</th>{% for language in s.languages %}<th>{{ language }}</th>{% endfor %}</tr></thead>
<tbody>{% for f in s.folds %}
<tr data-fold="{{ f.fold }}" data-rows="{{ f.rows }}"><td class="num">{{ f.fold }}</td><td>{{ "validation fold of the runs" if f.fold in s.scored_folds else "training only" }}</td><td class="num">{{ f.rows }}</td><td class="num">{{ f.positive_rate | fixed }}</td>
<td class="num">{{ f.query_leakage | fixed }}</td><td class="num">{{ f.group_leakage | fixed }}</td>
{% for language in s.languages %}<td class="num">{{ f.languages.get(language, 0) }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{{ figures["split-%s-%s" % (e.id, s.stage_id)] }}
{% else %}<p class="note">No split has finished.</p>{% endfor %}
</section>

<section id="timeline-{{ e.id }}" class="timeline-section">
<h3>Stage timeline</h3>
<p class="note">Queue wait (queued to started) and run time (started to finished) of each stage, coloured by worker host.</p>
{% if e.timeline.stages %}{{ figures["timeline-%s" % e.id] }}{% endif %}
{% if e.timeline.not_started %}<p class="note">Not started: {% for s in e.timeline.not_started %}{{ s.label }} ({{ s.status }}){% if not loop.last %}, {% endif %}{% endfor %}.</p>{% endif %}
</section>

<section id="examples-{{ e.id }}" class="examples-section">
<h3>Example model inputs</h3>
{% for x in e.examples %}
<h4>mode {{ x.mode }} (run {{ x.run }})</h4>
<table class="examples"><thead><tr><th>id</th><th>language</th><th>query</th>{% if x.mode != "orig" %}<th>English</th>{% endif %}<th>model input: query side</th><th>target side</th><th>label</th></tr></thead>
<tbody>{% for row in x.rows %}<tr><td>{{ row.id }}</td><td>{{ row.language }}</td><td>{{ row.query or "" }}</td>{% if x.mode != "orig" %}<td>{{ row.english or "" }}</td>{% endif %}
<td>{{ row.query_text }}</td><td>{{ row.target_text }}</td><td>{{ row.label if row.label is not none else "" }}</td></tr>{% endfor %}</tbody></table>
{% else %}<p class="note">No training wrote its inputs yet.</p>{% endfor %}
</section>

<section id="spec-{{ e.id }}" class="spec-section">
<h3>Resolved spec</h3>
<pre class="spec-json">{{ e.spec_json }}</pre>
{% if e.spec_text %}<details><summary>As written ({{ e.spec_path }})</summary><pre class="spec-text">{{ e.spec_text }}</pre></details>{% endif %}
</section>
</section>
{% endfor %}
</body>
</html>
"""
