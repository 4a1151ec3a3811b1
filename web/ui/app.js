/* The status page's script (web/web.h).  Reads the REST API every 3 s and
 * updates the page in place: services, sources, jobs with their status
 * (GET /api/v1/jobs/status), start and stop buttons, a form that creates a
 * professional-mode job from pasted YAML.  When a call answers 401 the page
 * asks for the API token and keeps it in sessionStorage (this tab only).
 *
 * Values from the server reach the page through textContent and attribute
 * setters only, never as markup.
 */
(function () {
	"use strict";

	var API = "/api/v1";
	var POLL_MS = 3000;
	var PAGE_SIZE = 100;      /* the API's largest page */
	var LIST_PAGES_MAX = 20;  /* at most 2,000 services, sources or jobs listed */
	var JOBS_EVERY = 10;      /* polls between two full reads of the job list */
	var TOKEN_KEY = "streamserver.token";

	var page = {
		services: [],
		sources: [],
		jobs: {},      /* job id -> list item (source_id, mode) */
		status: {},    /* job id -> status object */
		pending: {},   /* job id -> true while a start/stop is under way */
		timer: null,
		authNeeded: false,
		refreshes: 0
	};

	function $(id) {
		return document.getElementById(id);
	}

	/* An element with text (never markup) and attributes. */
	function el(tag, attrs, text) {
		var e = document.createElement(tag);
		var k;

		for (k in attrs || {})
			if (Object.prototype.hasOwnProperty.call(attrs, k))
				e.setAttribute(k, attrs[k]);
		if (text !== undefined && text !== null)
			e.textContent = String(text);
		return e;
	}

	function clear(node) {
		while (node.firstChild)
			node.removeChild(node.firstChild);
	}

	function getToken() {
		try {
			return window.sessionStorage.getItem(TOKEN_KEY) || "";
		} catch (e) {
			return "";
		}
	}

	function setToken(t) {
		try {
			if (t)
				window.sessionStorage.setItem(TOKEN_KEY, t);
			else
				window.sessionStorage.removeItem(TOKEN_KEY);
		} catch (e) {
			/* storage off: the token lives until the next 401 */
		}
		page.memToken = t;
	}

	function token() {
		return getToken() || page.memToken || "";
	}

	function num(v) {
		if (v === null || v === undefined || typeof v !== "number" || !isFinite(v))
			return "\u2013";
		return v.toLocaleString("en-US");
	}

	function rate(v) {
		if (typeof v !== "number" || !isFinite(v))
			return "\u2013";
		return v.toLocaleString("en-US", { maximumFractionDigits: v < 100 ? 1 : 0 });
	}

	function timeOf(iso) {
		var d = iso ? new Date(iso) : null;

		return d && !isNaN(d.getTime()) ? d.toLocaleTimeString("en-GB") : "";
	}

	/* An API failure: status (0 when the server was not reached), the
	 * message of the error body and the body itself. */
	function ApiError(status, message, body) {
		this.status = status;
		this.message = message;
		this.body = body;
	}

	/* One call of the REST API; resolves with the decoded body, rejects with
	 * an ApiError.  A 401 also brings up the token form. */
	function api(method, path, body) {
		var headers = { "Accept": "application/json" };
		var init = { method: method, headers: headers, cache: "no-store" };
		var t = token();

		if (t)
			headers.Authorization = "Bearer " + t;
		if (body !== undefined) {
			headers["Content-Type"] = "application/json";
			init.body = JSON.stringify(body);
		}
		return fetch(API + path, init).then(function (resp) {
			return resp.text().then(function (text) {
				var data = null;
				var msg;

				try {
					data = text ? JSON.parse(text) : null;
				} catch (e) {
					data = null;
				}
				if (resp.ok)
					return data;
				msg = data && data.error && data.error.message ? data.error.message
					: "HTTP " + resp.status + " " + (resp.statusText || "");
				if (resp.status === 401)
					askToken(msg);
				throw new ApiError(resp.status, msg, data);
			});
		}, function (e) {
			throw new ApiError(0, "cannot reach the server: " + (e && e.message ? e.message : e), null);
		});
	}

	/* Every item of a paged list (services, sources, jobs). */
	function listAll(path) {
		var items = [];

		function next(n) {
			return api("GET", path + "?page=" + n + "&page_size=" + PAGE_SIZE).then(function (body) {
				var got = body && Array.isArray(body.items) ? body.items : [];

				items = items.concat(got);
				if (got.length === PAGE_SIZE && items.length < body.total && n < LIST_PAGES_MAX)
					return next(n + 1);
				return items;
			});
		}
		return next(1);
	}

	/* ------------------------------------------------------------ token */

	function askToken(msg) {
		var had = token() !== "";

		page.authNeeded = true;
		$("auth").hidden = false;
		$("app").hidden = true;
		$("auth-message").textContent = had
			? "The server refused the token (" + msg + "). Enter a valid one."
			: "The API needs a token (" + msg + ").";
		$("token-forget").hidden = true;
		if (document.activeElement !== $("token-input"))
			$("token-input").focus();
	}

	function onToken(ev) {
		var t = $("token-input").value.trim();

		ev.preventDefault();
		if (!t)
			return;
		setToken(t);
		$("token-input").value = "";
		page.authNeeded = false;
		$("auth").hidden = true;
		refreshNow();
	}

	function onForget() {
		setToken("");
		page.memToken = "";
		refreshNow();
	}

	/* ------------------------------------------------------------ jobs */

	var STATE_CLASS = {
		running: "ok", starting: "info", stopping: "info", retrying: "warn",
		degraded: "warn", failed: "bad", stopped: "idle", standby: "idle"
	};

	function sourceName(id) {
		for (var i = 0; i < page.sources.length; i++)
			if (page.sources[i].id === id)
				return page.sources[i].name;
		return id === undefined || id === null ? "" : "#" + id;
	}

	function cell(field, cls) {
		var td = el("td", { "data-field": field });

		if (cls)
			td.className = cls;
		return td;
	}

	/* A job's row, built once; update fills it (keeps an open lag detail). */
	function jobRow(id) {
		var tr = el("tr", { "data-job-id": String(id), id: "job-" + id });
		var badge = el("span", { "class": "badge", "data-field": "state" });
		var stateTd = el("td");
		var tasksTd = el("td");
		var lagTd = el("td", { "class": "num" });
		var details = el("details", { "data-field": "lag_detail" });
		var summary = el("summary", { "data-field": "lag", title: "lag per partition" });
		var actions = el("td", { "class": "actions" });
		var start = el("button", { type: "button", "data-action": "start" }, "Start");
		var stop = el("button", { type: "button", "data-action": "stop" }, "Stop");

		tr.appendChild(cell("id", "num"));
		tr.appendChild(cell("name"));
		tr.appendChild(cell("source"));
		stateTd.appendChild(badge);
		tr.appendChild(stateTd);
		tasksTd.appendChild(el("ul", { "class": "tasks", "data-field": "tasks" }));
		tr.appendChild(tasksTd);
		tr.appendChild(cell("rows_per_second", "num"));
		details.appendChild(summary);
		details.appendChild(el("ul", { "class": "partitions", "data-field": "lag_partitions" }));
		details.appendChild(el("p", { "class": "note", "data-field": "lag_updated_at" }));
		lagTd.appendChild(details);
		tr.appendChild(lagTd);
		tr.appendChild(cell("rows_written", "num"));
		tr.appendChild(cell("rows_rejected", "num"));
		tr.appendChild(cell("restarts", "num"));
		tr.appendChild(cell("last_error", "err"));
		start.addEventListener("click", function () { jobAction(id, "start"); });
		stop.addEventListener("click", function () { jobAction(id, "stop"); });
		actions.appendChild(start);
		actions.appendChild(stop);
		actions.appendChild(el("div", { "class": "action-message", "data-field": "action_message",
			role: "status" }));
		tr.appendChild(actions);
		return tr;
	}

	function field(tr, name) {
		return tr.querySelector('[data-field="' + name + '"]');
	}

	function setText(tr, name, text) {
		var e = field(tr, name);

		if (e.textContent !== text)
			e.textContent = text;
	}

	function updateLag(tr, st) {
		var lag = st.lag || null;
		var total = lag ? lag.total : null;
		var summary = field(tr, "lag");
		var list = field(tr, "lag_partitions");
		var parts = lag && Array.isArray(lag.partitions) ? lag.partitions : [];
		var when = lag && lag.updated_at ? timeOf(lag.updated_at) : "";

		summary.textContent = total === null || total === undefined ? "\u2013" : num(total);
		summary.setAttribute("data-value", total === null || total === undefined ? "" : String(total));
		field(tr, "lag_detail").classList.toggle("stale", st.state !== "running" && when !== "");
		clear(list);
		parts.forEach(function (p) {
			var li = el("li", { "data-partition": String(p.partition) });

			li.textContent = "partition " + p.partition + ": " +
				(p.lag === null || p.lag === undefined ? "unknown" : num(p.lag));
			list.appendChild(li);
		});
		if (!parts.length)
			list.appendChild(el("li", null, "no lag report yet"));
		field(tr, "lag_updated_at").textContent = when ? "reported " + when : "";
	}

	/* One line per task: its state, pid and the partitions it owns now. */
	function updateTasks(tr, st) {
		var list = field(tr, "tasks");
		var tasks = Array.isArray(st.tasks) ? st.tasks : [];

		clear(list);
		tasks.forEach(function (t) {
			var li = el("li", { "data-task": String(t.task), "data-state": t.state || "" });
			var parts = Array.isArray(t.partitions) ? t.partitions : [];

			li.appendChild(el("span", { "class": "badge " + (STATE_CLASS[t.state] || "idle") },
				"#" + t.task + " " + (t.state || "")));
			li.appendChild(el("span", { "data-field": "task_partitions", "data-partitions": parts.join(",") },
				" partitions " + (parts.length ? parts.join(", ") : "\u2013")));
			li.title = (t.pid ? "pid " + t.pid : "no worker") + ", " + num(t.restarts || 0) + " restarts" +
				(t.last_error ? ", last error: " + t.last_error : "");
			list.appendChild(li);
		});
	}

	function updateJob(tr, st) {
		var badge = field(tr, "state");
		var job = page.jobs[st.id] || {};
		var desired = st.desired_state;
		var busy = !!page.pending[st.id];
		var err = st.last_error || "";

		setText(tr, "id", String(st.id));
		setText(tr, "name", st.name || "");
		setText(tr, "source", sourceName(job.source_id));
		setText(tr, "state", st.state || "");
		badge.className = "badge " + (STATE_CLASS[st.state] || "idle");
		badge.title = "wanted: " + (desired || "?");
		setText(tr, "rows_per_second", st.state === "running" || st.state === "degraded" ?
			rate(st.rows_per_second) : rate(0));
		updateLag(tr, st);
		updateTasks(tr, st);
		setText(tr, "rows_written", num(st.rows_written));
		setText(tr, "rows_rejected", num(st.rows_rejected));
		setText(tr, "restarts", num(st.restarts));
		setText(tr, "last_error", err);
		field(tr, "last_error").title = st.last_exit ? "last exit: " + st.last_exit : "";
		tr.querySelector('[data-action="start"]').setAttribute("aria-label",
			"Start job " + (st.name || st.id));
		tr.querySelector('[data-action="stop"]').setAttribute("aria-label",
			"Stop job " + (st.name || st.id));
		tr.querySelector('[data-action="start"]').disabled = busy ||
			(desired === "running" && st.state !== "failed");
		tr.querySelector('[data-action="stop"]').disabled = busy ||
			(desired === "stopped" && (st.state === "stopped" || st.state === "failed"));
	}

	function renderJobs() {
		var body = $("jobs-body");
		var ids = Object.keys(page.status).map(Number).sort(function (a, b) { return a - b; });
		var rows = {};
		var before = null;

		Array.prototype.forEach.call(body.querySelectorAll("tr[data-job-id]"), function (tr) {
			rows[tr.getAttribute("data-job-id")] = tr;
		});
		/* In id order, reusing each job's row; rows of deleted jobs go. */
		for (var i = ids.length - 1; i >= 0; i--) {
			var tr = rows[ids[i]] || jobRow(ids[i]);

			delete rows[ids[i]];
			updateJob(tr, page.status[ids[i]]);
			if (tr.nextSibling !== before || tr.parentNode !== body)
				body.insertBefore(tr, before);
			before = tr;
		}
		Object.keys(rows).forEach(function (k) { body.removeChild(rows[k]); });
		$("jobs-count").textContent = String(ids.length);
		$("jobs-empty").hidden = ids.length !== 0;
		$("jobs-table").hidden = ids.length === 0;
	}

	function jobAction(id, verb) {
		var tr = $("job-" + id);
		var msg = tr ? field(tr, "action_message") : null;

		page.pending[id] = true;
		if (tr && page.status[id])
			updateJob(tr, page.status[id]);
		if (msg)
			msg.textContent = verb === "start" ? "starting\u2026" : "stopping\u2026";
		api("POST", "/jobs/" + id + "/" + verb).then(function (st) {
			if (st && typeof st === "object" && page.status[id])
				Object.keys(st).forEach(function (k) { page.status[id][k] = st[k]; });
			if (msg)
				msg.textContent = "";
		}, function (e) {
			if (msg)
				msg.textContent = e.message + (e.status ? " (HTTP " + e.status + ")" : "");
		}).then(function () {
			delete page.pending[id];
			var row = $("job-" + id);

			if (row && page.status[id])
				updateJob(row, page.status[id]);
			refreshSoon();
		});
	}

	/* -------------------------------------------------- services, sources */

	function renderTable(bodyId, countId, items, columns) {
		var body = $(bodyId);

		clear(body);
		items.forEach(function (item) {
			var tr = el("tr", { "data-id": String(item.id) });

			columns.forEach(function (c) {
				var td = el("td", { "data-field": c.field }, c.value(item));

				if (c.num)
					td.className = "num";
				tr.appendChild(td);
			});
			body.appendChild(tr);
		});
		$(countId).textContent = String(items.length);
	}

	function renderServices() {
		var wanted = {};

		Object.keys(page.status).forEach(function (id) {
			var job = page.jobs[id];
			var src = null;

			if (!job || page.status[id].desired_state !== "running")
				return;
			page.sources.forEach(function (s) {
				if (s.id === job.source_id)
					src = s;
			});
			if (src)
				wanted[src.service_id] = (wanted[src.service_id] || 0) + 1;
		});
		renderTable("services-body", "services-count", page.services, [
			{ field: "id", num: true, value: function (s) { return s.id; } },
			{ field: "name", value: function (s) { return s.name; } },
			{ field: "jobs_wanted", num: true, value: function (s) { return wanted[s.id] || 0; } },
			{ field: "spec_cu", num: true, value: function (s) { return s.spec_cu; } },
			{ field: "database", value: function (s) { return s.database_host + ":" + s.database_port; } },
			{ field: "status", value: function (s) { return s.status; } },
			{ field: "description", value: function (s) { return s.description; } }
		]);
	}

	function renderSources() {
		var names = {};

		page.services.forEach(function (s) { names[s.id] = s.name; });
		renderTable("sources-body", "sources-count", page.sources, [
			{ field: "id", num: true, value: function (s) { return s.id; } },
			{ field: "name", value: function (s) { return s.name; } },
			{ field: "service", value: function (s) { return names[s.service_id] || "#" + s.service_id; } },
			{ field: "brokers", value: function (s) { return s.brokers; } },
			{ field: "topic", value: function (s) { return s.topic; } },
			{ field: "format", value: function (s) { return s.format; } },
			{ field: "status", value: function (s) { return s.status; } },
			{ field: "description", value: function (s) { return s.description; } }
		]);
		renderSourceSelect();
	}

	/* The form's source choice, keeping the user's selection. */
	function renderSourceSelect() {
		var sel = $("job-source");
		var keep = sel.value;

		clear(sel);
		sel.appendChild(el("option", { value: "" }, page.sources.length ? "choose a source"
			: "no sources yet: POST /api/v1/sources"));
		page.sources.forEach(function (s) {
			var o = el("option", { value: String(s.id) }, s.name + " (" + s.topic + ", " + s.format + ")");

			sel.appendChild(o);
		});
		sel.value = keep;
		if (sel.value !== keep)
			sel.value = "";
	}

	/* -------------------------------------------------------- job form */

	/* The line numbers beside the YAML; lines with a problem are marked. */
	function renderGutter(bad) {
		var gutter = $("job-config-gutter");
		var n = $("job-config").value.split("\n").length;

		bad = bad || page.badLines || {};
		clear(gutter);
		for (var i = 1; i <= n; i++) {
			var span = el("span", { "data-line": String(i) }, String(i));

			if (bad[i]) {
				span.className = "bad";
				span.title = bad[i];
			}
			gutter.appendChild(span);
			gutter.appendChild(document.createTextNode("\n"));
		}
		gutter.scrollTop = $("job-config").scrollTop;
	}

	function selectLine(line) {
		var ta = $("job-config");
		var lines = ta.value.split("\n");
		var start = 0;

		if (line < 1 || line > lines.length)
			return;
		for (var i = 0; i < line - 1; i++)
			start += lines[i].length + 1;
		ta.focus();
		ta.setSelectionRange(start, start + lines[line - 1].length);
	}

	function showProblems(details) {
		var list = $("job-errors");
		var bad = {};

		clear(list);
		details.forEach(function (d) {
			var li = el("li", { "class": "problem" });
			var where = d.line ? "line " + d.line : "";

			if (d.line) {
				li.setAttribute("data-line", String(d.line));
				bad[d.line] = (bad[d.line] ? bad[d.line] + "; " : "") + d.message;
				li.addEventListener("click", function () { selectLine(d.line); });
			}
			li.appendChild(el("span", { "class": "where" }, where));
			if (d.field)
				li.appendChild(el("code", { "class": "field" }, d.field));
			li.appendChild(el("span", { "class": "message" }, d.message || ""));
			list.appendChild(li);
		});
		page.badLines = bad;
		renderGutter(bad);
		scrollToLine(Math.min.apply(null, Object.keys(bad).map(Number)));
	}

	/* Brings a line of the YAML into view (a few lines of context above). */
	function scrollToLine(line) {
		var ta = $("job-config");
		var lh = parseFloat(window.getComputedStyle(ta).lineHeight) || 18;

		if (!isFinite(line) || line < 1)
			return;
		ta.scrollTop = Math.max(0, line - 4) * lh;
		$("job-config-gutter").scrollTop = ta.scrollTop;
	}

	function formMessage(text, cls) {
		var m = $("job-form-message");

		m.textContent = text;
		m.className = cls || "";
	}

	function onSubmit(ev) {
		var name = $("job-name").value.trim();
		var source = $("job-source").value;
		var body;

		ev.preventDefault();
		if (!name || !source) {
			formMessage(!name ? "Give the job a name." : "Choose a source.", "bad");
			(!name ? $("job-name") : $("job-source")).focus();
			return;
		}
		body = { name: name, source_id: Number(source), mode: "professional",
			config: $("job-config").value };
		$("job-submit").disabled = true;
		formMessage("creating\u2026", "");
		api("POST", "/jobs", body).then(function (job) {
			showProblems([]);
			formMessage("Created job " + job.id + " (" + job.name +
				"), stopped: start it in the list above.", "ok");
			$("job-name").value = "";
			$("job-config").value = "";
			renderGutter({});
			refreshSoon();
		}, function (e) {
			var err = e.body && e.body.error ? e.body.error : null;
			var details = err && Array.isArray(err.details) ? err.details : [];

			if (!details.length && err && e.status === 422)
				details = [{ field: err.field, line: null, message: err.message }];
			showProblems(details);
			formMessage(e.status === 422 ? "The job was not created: " + details.length +
				(details.length === 1 ? " problem" : " problems") +
				(err && err.details_truncated ? " (more not shown)" : "") + "."
				: "The job was not created: " + e.message + (e.status ? " (HTTP " + e.status + ")" : ""),
				"bad");
		}).then(function () {
			$("job-submit").disabled = false;
		});
	}

	/* -------------------------------------------------------- refresh */

	function statusLine(text, cls) {
		var s = $("status-line");

		s.textContent = text;
		s.className = "note " + (cls || "");
	}

	/* The job list carries each job's whole definition; the page needs only
	 * its source, so it reads the list again only when a job it does not know
	 * appears, and every JOBS_EVERY polls (a stopped job's source can change). */
	function jobsFor(status) {
		var known = status.every(function (st) { return page.jobs[st.id] !== undefined; });

		if (known && page.refreshes % JOBS_EVERY !== 0)
			return Promise.resolve(page.jobs);
		return listAll("/jobs").then(function (items) {
			var jobs = {};

			items.forEach(function (j) { jobs[j.id] = { source_id: j.source_id, mode: j.mode }; });
			/* Past the list's cap: known, without a source, until the next full read. */
			status.forEach(function (st) {
				if (jobs[st.id] === undefined)
					jobs[st.id] = { source_id: null, mode: null };
			});
			return jobs;
		});
	}

	function refresh() {
		var got;

		page.timer = null;
		return Promise.all([listAll("/services"), listAll("/sources"),
			api("GET", "/jobs/status")]).then(function (r) {
			got = r;
			return jobsFor(r[2] && Array.isArray(r[2].items) ? r[2].items : []);
		}).then(function (jobs) {
			var status = {};

			page.services = got[0];
			page.sources = got[1];
			(got[2] && Array.isArray(got[2].items) ? got[2].items : []).forEach(function (st) {
				status[st.id] = st;
			});
			page.jobs = jobs;
			page.status = status;
			page.authNeeded = false;
			$("auth").hidden = true;
			$("app").hidden = false;
			$("token-forget").hidden = token() === "";
			renderSources();
			renderServices();
			renderJobs();
			page.refreshes++;
			document.documentElement.setAttribute("data-refreshes", String(page.refreshes));
			statusLine("Updated " + new Date().toLocaleTimeString("en-GB") +
				" \u00b7 refreshes every " + POLL_MS / 1000 + " s \u00b7 REST API under " + API, "");
		}, function (e) {
			if (e.status === 401)
				statusLine("The API needs a token.", "bad");
			else
				statusLine("Last refresh failed: " + e.message +
					(e.status ? " (HTTP " + e.status + ")" : "") + "; retrying.", "bad");
		}).then(schedule);
	}

	function schedule() {
		if (page.timer !== null || page.authNeeded)
			return;
		page.timer = window.setTimeout(refresh, POLL_MS);
	}

	function refreshNow() {
		if (page.timer !== null) {
			window.clearTimeout(page.timer);
			page.timer = null;
		}
		refresh();
	}

	/* After a change: at once, without waiting for the next poll. */
	function refreshSoon() {
		if (page.timer !== null) {
			window.clearTimeout(page.timer);
			page.timer = window.setTimeout(refresh, 300);
		}
	}

	function init() {
		var ta = $("job-config");

		$("auth-form").addEventListener("submit", onToken);
		$("token-forget").addEventListener("click", onForget);
		$("job-form").addEventListener("submit", onSubmit);
		ta.addEventListener("input", function () { renderGutter(); });
		ta.addEventListener("scroll", function () { $("job-config-gutter").scrollTop = ta.scrollTop; });
		renderGutter({});
		statusLine("Loading\u2026", "");
		refresh();
	}

	if (document.readyState === "loading")
		document.addEventListener("DOMContentLoaded", init);
	else
		init();
}());
