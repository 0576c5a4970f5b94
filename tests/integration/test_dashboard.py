#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""secure_dashboard through a real headless Chromium: a real Mosquitto over mutual TLS, the
dashboard subscribed as the monitor identity with device-1's key, the page opened once and never
reloaded. Genuine readings appear in the table and the chart, a tampered and a replayed message
appear in the rejection feed with their reasons, the markup payload is shown as text and creates
no element, a non-UTF-8 payload is shown as hex, /metrics and /api/state match the counts, every
response carries the security headers, a foreign Host header is refused, the console stays
free of errors, and a bounded flood leaves the page responsive with its feeds capped.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: chromium, chromium-driver),
python3-selenium and python3-prometheus-client; scripts/setup installs them. The broker's ACL
lets device-1 publish only under devices/device-1/ and the monitor read devices/#, so every topic
here is under devices/device-1/."""

import http.client
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import unittest
import urllib.request

from harness import SLOWDOWN, TIMEOUT, BackgroundProgram, Broker, main, program, sm
from harness import run as run_program

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REASONS = ("malformed", "unsupported_version", "unsupported_algorithm", "unknown_key", "key_not_valid",
           "key_not_allowed_for_topic", "bad_mac", "too_old", "from_future", "replayed", "too_large",
           "replay_state_unavailable")
URL_LINE = re.compile(r"^secure_dashboard: serving http://127\.0\.0\.1:(\d+)/$")
POLL = 0.1  # seconds between two looks at a condition; a wait's bound (TIMEOUT) only ends a hang

BASE = "devices/device-1/"
TEMP = BASE + "sensors/d1/temp"
HUMIDITY = BASE + "sensors/d2/humidity"
TEMP_LINES = ["20.5", "21.0", "21.5", "22.0"]
HUMIDITY_LINES = ['{"rh": 40}', '{"rh": 41.5}', '{"unit": "%", "rh": 43, "battery": 97}']  # first numeric member
HUMIDITY_VALUES = [40, 41.5, 43]
MARKUP_TOPIC = BASE + "<b>bold</b>/x"
MARKUP = "<img src=x onerror=alert(1)>"
BINARY_TOPIC = BASE + "raw/blob"
BINARY = b"\xff\xfe\x00\x41"
TAMPERED_TOPIC = BASE + "attack/<img src=y onerror=alert(2)>"  # markup in the rejection feed too
TAMPERED_TEXT = "tampered-reading-must-not-be-shown"
REPLAYED_TOPIC = BASE + "attack/replayed"

# One look at everything the page shows, in one script call (so one consistent moment).
SNAPSHOT_JS = r"""
const q = (s, root) => (root || document).querySelector(s);
const text = e => (e ? e.textContent : null);
const rows = s => Array.from(document.querySelectorAll(s));
let datasets = null, rendered = false;
if (typeof Chart !== 'undefined') {
  const c = Chart.getChart('chart');
  if (c) {
    datasets = c.data.datasets.map(d => ({label: d.label,
      data: d.data.map(p => [p.x, p.y])}));
    const idle = !Chart.animator || !Chart.animator.running(c);
    rendered = idle && !!c.chartArea && c.chartArea.right > c.chartArea.left && c.canvas.width > 0;
  }
}
const conn = q('#connection');
return {
  marker: window.__securemqttTestMarker || null,
  live: document.body.getAttribute('data-live'),
  connection: conn ? conn.getAttribute('data-state') : null,
  chart_is_canvas: !!q('canvas#chart'),
  verified: text(q('#verified-total')),
  rejected: text(q('#rejected-total')),
  reconnects: text(q('#reconnects')),
  topics: rows('#topics tbody tr').map(tr => ({
    data_topic: tr.getAttribute('data-topic'),
    topic: text(q('td.topic', tr)),
    value: text(q('td.value', tr)),
    format: q('td.value', tr) ? q('td.value', tr).getAttribute('data-format') : null,
    value_children: q('td.value', tr) ? q('td.value', tr).children.length : null,
    topic_children: q('td.topic', tr) ? q('td.topic', tr).children.length : null,
    key_id: text(q('td.key-id', tr)),
    signed: text(q('td.signed', tr)),
    count: text(q('td.count', tr))})),
  rejections: rows('#rejections tbody tr').map(tr => ({
    time: text(q('td.time', tr)), reason: text(q('td.reason', tr)), topic: text(q('td.topic', tr))})),
  reasons: rows('#reasons tbody tr').map(tr => [tr.getAttribute('data-reason'), text(q('td.count', tr))]),
  datasets: datasets,
  chart_rendered: rendered,
  images: document.querySelectorAll('img').length,
  bold: document.querySelectorAll('b').length,
  onerror: document.querySelectorAll('[onerror]').length,
  body_text: document.body.textContent,
};
"""


def http_request(port, path, host=None, read=True):
    """GET over a plain socket with exactly this Host header: (status, headers, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else "127.0.0.1:%d" % port)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read() if read else b""  # /events never ends: its headers are enough
        return resp.status, resp.msg, body
    finally:
        conn.close()


_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, no proxy


def fetch(port, path):
    """GET with urllib (Host: 127.0.0.1:PORT): (content type, body text)."""
    with _opener.open("http://127.0.0.1:%d%s" % (port, path), timeout=TIMEOUT) as resp:
        return resp.headers.get("Content-Type"), resp.read().decode()


def parse_metrics(text):
    """{(sample name, frozenset(labels)): value}, {family name: (type, help)} via the real parser."""
    from prometheus_client.parser import text_string_to_metric_families
    samples, families = {}, {}
    for family in text_string_to_metric_families(text):
        families[family.name] = (family.type, family.documentation)
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in samples, "sample %s twice" % (key,)
            samples[key] = s.value
    return samples, families


def metric(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def csp_directive(policy, name):
    for part in policy.split(";"):
        tokens = part.split()
        if tokens and tokens[0].lower() == name:
            return tokens[1:]
    return None


class LiveDashboard(unittest.TestCase):
    """One broker, one dashboard and one browser page for the class; the steps run in the order
    of their names (step_01 ... step_11), each building on the state the previous ones left (the
    counts they expect are kept in the class as messages are published, so a failed step does
    not hide what the later ones find)."""

    broker = dashboard = driver = service = None
    tmp = None
    port = None
    verified = 0           # verified messages published so far
    rejected = {}          # reason -> count of rejected messages injected so far
    console = []           # every browser console entry seen so far
    drawn_before_flood = []  # chart lines drawn before the flood (they stay drawn)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="securemqtt-dashboard-")
        cls.rejected = {r: 0 for r in REASONS}
        cls.console = []
        try:
            cls.broker = Broker()
            cls.key1 = sm.load_key_file(cls.broker.keys["device-1"])
            args = [program("secure_dashboard")] + cls.broker.tls_flags("monitor") + \
                cls.broker.key_flags("device-1") + ["-t", "devices/#", "-q", "1", "--http", "127.0.0.1:0",
                                                    "--allow-host", "dashboard.test", "-d"]
            cls.dashboard = BackgroundProgram(args)
            cls.dashboard.wait(lambda: len(cls.dashboard.out) >= 1, "printed its URL line")
            m = URL_LINE.match(cls.dashboard.out[0])
            if not m:
                raise AssertionError("first stdout line is not the URL line: %r" % cls.dashboard.out[0])
            cls.port = int(m.group(1))
            cls.url = "http://127.0.0.1:%d/" % cls.port
            cls.dashboard.wait(lambda: any("connected to" in l for l in cls.dashboard.err),
                               "logged 'connected to' (subscribed)")
            cls.start_browser()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start_browser(cls):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        for path in (CHROMIUM, CHROMEDRIVER):
            if not os.path.exists(path):
                raise unittest.SkipTest("not installed: " + path)  # a failure here (NoSkipResult)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--user-data-dir=" + os.path.join(cls.tmp, "chromium-profile"), "--window-size=1280,1100",
                  "--no-proxy-server", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-default-apps", "--disable-sync"):
            options.add_argument(a)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Its own process group, so that clean-up can end chromedriver and its browser by id.
        cls.service = Service(CHROMEDRIVER, popen_kw={"start_new_session": True})
        cls.driver = webdriver.Chrome(service=cls.service, options=options)
        cls.driver.set_script_timeout(TIMEOUT)
        cls.driver.set_page_load_timeout(TIMEOUT)

    @classmethod
    def tearDownClass(cls):
        try:
            if cls.driver is not None:
                try:
                    cls.driver.quit()
                except Exception:
                    pass
            proc = getattr(cls.service, "process", None) if cls.service is not None else None
            if proc is not None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # chromedriver's group: whatever quit() left
                except (ProcessLookupError, PermissionError):
                    pass
                try:
                    proc.wait(timeout=TIMEOUT)
                except Exception:
                    pass
        finally:
            try:
                if cls.dashboard is not None:
                    cls.dashboard.kill()
            finally:
                if cls.broker is not None:
                    cls.broker.close()
                shutil.rmtree(cls.tmp, ignore_errors=True)

    # -- helpers ----------------------------------------------------------------------------

    def snapshot(self):
        from selenium.common.exceptions import NoAlertPresentException
        snap = self.driver.execute_script(SNAPSHOT_JS)  # an alert would raise UnexpectedAlertPresentException
        try:
            alert = self.driver.switch_to.alert
            self.fail("the page opened an alert: %r" % alert.text)
        except NoAlertPresentException:
            pass
        self.assertEqual(snap["marker"], "loaded once", "the page was reloaded or navigated away")
        return snap

    def wait_page(self, condition, what, timeout=TIMEOUT):
        """Polls the page until condition(snapshot) holds; the bound only ends a hang."""
        deadline = time.monotonic() + timeout
        snap = None
        for _ in range(int(timeout / POLL) + 1):
            snap = self.snapshot()
            if condition(snap):
                return snap
            if time.monotonic() > deadline:
                break
            time.sleep(POLL)
        snap = dict(snap or {}, body_text="(left out)")
        self.fail("the page never showed %s; it shows:\n%s\ndashboard stderr:\n%s" % (
            what, json.dumps(snap, indent=1)[:6000], self.dashboard.stderr_tail()))

    def wait_http(self, condition, what, timeout=TIMEOUT):
        """Polls /metrics and /api/state until condition(samples, state) holds."""
        deadline = time.monotonic() + timeout
        last = None
        for _ in range(int(timeout / POLL) + 1):
            samples, _families = parse_metrics(fetch(self.port, "/metrics")[1])
            state = json.loads(fetch(self.port, "/api/state")[1])
            last = (samples, state)
            if condition(samples, state):
                return samples, state
            if time.monotonic() > deadline:
                break
            time.sleep(POLL)
        self.fail("the server never reported %s; /api/state stats: %s" % (what, json.dumps(last[1].get("stats"))))

    def state(self):
        content_type, body = fetch(self.port, "/api/state")
        self.assertTrue(content_type.startswith("application/json"), content_type)
        return json.loads(body)

    def publish(self, topic, lines=None, message=None, path=None):
        args = [program("secure_publisher"), "-q", "1", "-t", topic] + self.broker.tls_flags("device-1") + \
            self.broker.key_flags("device-1")
        if lines is not None:
            out = run_program(args + ["-l"], stdin="".join(l + "\n" for l in lines))
            sent = len(lines)
        elif message is not None:
            out = run_program(args + ["-m", message])
            sent = 1
        else:
            out = run_program(args + ["-f", path])
            sent = 1
        self.assertEqual(out.returncode, 0, out.stderr)
        LiveDashboard.verified += sent

    def collect_console(self):
        entries = self.driver.get_log("browser")
        LiveDashboard.console.extend(entries)
        return entries

    def row(self, snap, topic):
        rows = [r for r in snap["topics"] if r["data_topic"] == topic]
        self.assertEqual(len(rows), 1, "rows for %r: %s" % (topic, json.dumps(snap["topics"], indent=1)))
        return rows[0]

    def has_row(self, snap, topic, count):
        """The topic's row with `count` messages, and #verified-total caught up with every
        verified message sent so far (the session counts one once its handler has returned)."""
        return snap["verified"] == str(self.verified) and \
            any(r["data_topic"] == topic and r["count"] == str(count) for r in snap["topics"])

    def assert_reasons(self, snap):
        self.assertEqual(sorted(r for r, _ in snap["reasons"]), sorted(REASONS), "one #reasons row per reason")
        self.assertEqual({r: int(c) for r, c in snap["reasons"]}, self.rejected)

    # -- the steps ---------------------------------------------------------------------------

    def test_step_01_page_opens_once_and_goes_live_before_anything_is_published(self):
        self.driver.get(self.url)  # the only navigation: every later update is pushed (SSE)
        self.driver.execute_script("window.__securemqttTestMarker = 'loaded once';")
        snap = self.wait_page(lambda s: s["live"] == "1" and s["connection"] == "connected",
                              'body[data-live="1"] and #connection[data-state="connected"]')
        self.assertTrue(snap["chart_is_canvas"], "#chart is a <canvas>")
        self.assertEqual((snap["verified"], snap["rejected"], snap["reconnects"]), ("0", "0", "0"))
        self.assertEqual(snap["topics"], [])
        self.assertEqual(snap["rejections"], [])
        self.assert_reasons(snap)
        self.collect_console()

    def test_step_02_genuine_readings_appear_in_the_table_and_the_chart(self):
        t0 = int(time.time() * 1000)
        self.publish(TEMP, lines=TEMP_LINES)
        self.publish(HUMIDITY, lines=HUMIDITY_LINES)
        t1 = int(time.time() * 1000)
        snap = self.wait_page(lambda s: self.has_row(s, TEMP, len(TEMP_LINES)) and
                              self.has_row(s, HUMIDITY, len(HUMIDITY_LINES)),
                              "both topics with all their readings")
        self.assertEqual(len(snap["topics"]), 2, json.dumps(snap["topics"]))
        state = self.state()
        by_topic = {t["topic"]: t for t in state["topics"]}
        for topic, lines, values in ((TEMP, TEMP_LINES, [float(v) for v in TEMP_LINES]),
                                     (HUMIDITY, HUMIDITY_LINES, HUMIDITY_VALUES)):
            with self.subTest(topic=topic):
                row = self.row(snap, topic)
                self.assertEqual((row["topic"], row["value"], row["format"], row["key_id"], row["count"]),
                                 (topic, lines[-1], "text", "device-1", str(len(lines))))
                self.assertTrue(row["signed"].strip(), "td.signed is empty")
                t = by_topic[topic]
                self.assertEqual((t["value"], t["value_format"], t["size"], t["truncated"], t["numeric"], t["key_id"],
                                  t["count"]),
                                 (lines[-1], "text", len(lines[-1].encode()), False, values[-1], "device-1",
                                  len(lines)))
                self.assertTrue(t0 - 1000 <= t["signed_ms"] <= t1 + 1000, (t0, t["signed_ms"], t1))
                self.assertEqual([p[1] for p in t["points"]], values)
                # The chart: one dataset per numeric topic, exactly the published values, at the
                # times they were signed (as /api/state has them).
                datasets = [d for d in snap["datasets"] if d["label"] == topic]
                self.assertEqual(len(datasets), 1, json.dumps(snap["datasets"]))
                self.assertEqual([y for _, y in datasets[0]["data"]], values)
                xs = [x for x, _ in datasets[0]["data"]]
                self.assertEqual(xs, [p[0] for p in t["points"]])
                self.assertEqual(xs, sorted(xs))
                self.assertTrue(all(t0 - 1000 <= x <= t1 + 1000 for x in xs), (t0, xs, t1))
        self.assertEqual(sorted(d["label"] for d in snap["datasets"]), sorted([TEMP, HUMIDITY]))

    def test_step_03_markup_payload_and_topic_are_shown_as_text_and_create_no_element(self):
        self.publish(MARKUP_TOPIC, message=MARKUP)
        snap = self.wait_page(lambda s: self.has_row(s, MARKUP_TOPIC, 1), "the markup topic's row")
        row = self.row(snap, MARKUP_TOPIC)
        self.assertEqual(row["value"], MARKUP)  # the text, literally
        self.assertEqual(row["topic"], MARKUP_TOPIC)
        self.assertEqual((row["format"], row["key_id"], row["value_children"], row["topic_children"]),
                         ("text", "device-1", 0, 0))
        self.assertEqual((snap["images"], snap["bold"], snap["onerror"]), (0, 0, 0), "markup became elements")
        # Not numeric: no dataset for it.
        self.assertEqual(sorted(d["label"] for d in snap["datasets"]), sorted([TEMP, HUMIDITY]))
        t = {t["topic"]: t for t in self.state()["topics"]}[MARKUP_TOPIC]
        self.assertEqual((t["value"], t["value_format"], t["numeric"]), (MARKUP, "text", None))
        self.snapshot()  # still no alert, a while later

    def test_step_04_a_payload_that_is_not_utf8_is_shown_as_hex(self):
        path = os.path.join(self.tmp, "binary.bin")
        with open(path, "wb") as f:
            f.write(BINARY)
        self.publish(BINARY_TOPIC, path=path)
        snap = self.wait_page(lambda s: self.has_row(s, BINARY_TOPIC, 1), "the binary topic's row")
        row = self.row(snap, BINARY_TOPIC)
        self.assertEqual((row["format"], row["value"], row["key_id"]), ("hex", "fffe0041", "device-1"))
        t = {t["topic"]: t for t in self.state()["topics"]}[BINARY_TOPIC]
        self.assertEqual((t["value"], t["value_format"], t["size"], t["numeric"]), ("fffe0041", "hex", 4, None))

    def test_step_05_tampered_and_replayed_messages_appear_in_the_rejection_feed(self):
        signer = sm.Signer(self.key1, "device-1")
        tampered = bytearray(signer.sign(TAMPERED_TOPIC, TAMPERED_TEXT.encode()))
        tampered[-33] ^= 0x01  # a payload byte: the MAC no longer matches
        genuine = signer.sign(REPLAYED_TOPIC, b"7.5")
        self.broker.raw_publish("device-1", [(TAMPERED_TOPIC, bytes(tampered), False),
                                             (REPLAYED_TOPIC, genuine, False),
                                             (REPLAYED_TOPIC, genuine, False)])  # the same envelope again
        LiveDashboard.verified += 1
        LiveDashboard.rejected["bad_mac"] += 1
        LiveDashboard.rejected["replayed"] += 1
        snap = self.wait_page(lambda s: len(s["rejections"]) >= 2 and s["rejected"] == "2" and
                              self.has_row(s, REPLAYED_TOPIC, 1), "two rejections and the replayed topic's row")
        self.assertEqual([(r["reason"], r["topic"]) for r in snap["rejections"]],  # newest first
                         [("replayed", REPLAYED_TOPIC), ("bad_mac", TAMPERED_TOPIC)])
        self.assertTrue(all(r["time"].strip() for r in snap["rejections"]), snap["rejections"])
        self.assertEqual((snap["images"], snap["bold"], snap["onerror"]), (0, 0, 0), "markup became elements")
        self.assert_reasons(snap)
        self.assertEqual(self.row(snap, REPLAYED_TOPIC)["value"], "7.5")
        self.assertNotIn(TAMPERED_TOPIC, [r["data_topic"] for r in snap["topics"]],
                         "a rejected message became a reading")
        self.assertNotIn(TAMPERED_TEXT, snap["body_text"], "a tampered payload is shown")
        state = self.state()
        self.assertEqual([(r["reason"], r["topic"]) for r in state["rejections"]],  # oldest first
                         [("bad_mac", TAMPERED_TOPIC), ("replayed", REPLAYED_TOPIC)])
        # The screenshot, once the chart has drawn every numeric topic.
        snap = self.wait_page(lambda s: s["chart_rendered"] and len(s["datasets"] or []) == 3, "the chart drawn")
        LiveDashboard.drawn_before_flood = [d["label"] for d in snap["datasets"]]
        path = os.environ.get("SECUREMQTT_DASHBOARD_SCREENSHOT") or os.path.join(self.tmp, "dashboard.png")
        self.assertTrue(self.driver.save_screenshot(path), path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_step_06_metrics_state_and_page_agree_on_the_counts(self):
        content_type, text = fetch(self.port, "/metrics")
        self.assertTrue(content_type.replace(" ", "").startswith("text/plain;version=0.0.4"), content_type)
        samples, families = parse_metrics(text)
        for name, kind in (("securemqtt_messages_verified", "counter"), ("securemqtt_messages_rejected", "counter"),
                           ("securemqtt_publish_failures", "counter"), ("securemqtt_reconnects", "counter"),
                           ("securemqtt_connection_losses", "counter"), ("securemqtt_handler_errors", "counter"),
                           ("securemqtt_connected", "gauge")):
            with self.subTest(family=name):
                self.assertIn(name, families)
                self.assertEqual(families[name][0], kind)  # its TYPE line
                self.assertTrue(families[name][1].strip(), "no HELP text")
                self.assertIn("# HELP %s%s " % (name, "_total" if kind == "counter" else ""), text)
        self.assertEqual(metric(samples, "securemqtt_messages_verified_total"), self.verified)
        rejected = {dict(labels)["reason"]: v for (name, labels), v in samples.items()
                    if name == "securemqtt_messages_rejected_total"}
        self.assertEqual(rejected, self.rejected)  # all 12 reasons, zeros included
        self.assertEqual(metric(samples, "securemqtt_connected"), 1)
        for name in ("securemqtt_publish_failures_total", "securemqtt_reconnects_total",
                     "securemqtt_connection_losses_total", "securemqtt_handler_errors_total"):
            self.assertEqual(metric(samples, name), 0, name)

        state = self.state()
        self.assertEqual(state["connection"]["state"], "connected")
        self.assertIsInstance(state["seq"], int)
        stats = state["stats"]
        self.assertEqual((stats["verified"], stats["rejected"], stats["rejected_by_reason"]),
                         (self.verified, sum(self.rejected.values()), self.rejected))
        self.assertEqual((stats["reconnects"], stats["connection_losses"], stats["publish_failures"],
                          stats["handler_errors"]), (0, 0, 0, 0))
        self.assertEqual(sorted(t["topic"] for t in state["topics"]),
                         sorted([TEMP, HUMIDITY, MARKUP_TOPIC, BINARY_TOPIC, REPLAYED_TOPIC]))
        self.assertEqual(sum(t["count"] for t in state["topics"]), self.verified)
        self.assertEqual(state["topics_dropped"], 0)
        for name in ("topics", "points_per_topic", "history_seconds", "rejections", "value_bytes"):
            self.assertIsInstance(state["limits"][name], int, name)
            self.assertGreater(state["limits"][name], 0, name)

        snap = self.wait_page(lambda s: s["verified"] == str(self.verified), "#verified-total = %d" % self.verified)
        self.assertEqual((snap["rejected"], snap["reconnects"], snap["connection"], snap["live"]),
                         (str(sum(self.rejected.values())), "0", "connected", "1"))
        later = self.state()
        self.assertGreaterEqual(later["seq"], state["seq"])

    def test_step_07_headers_csp_nosniff_host_guard_and_event_stream(self):
        paths = ("/", "/dashboard.js", "/dashboard.css", "/chart.js", "/api/state", "/metrics")
        for path in paths + ("/events",):
            with self.subTest(path=path):
                status, headers, body = http_request(self.port, path, read=path != "/events")
                self.assertEqual(status, 200)
                policies = headers.get_all("Content-Security-Policy") or []
                self.assertEqual(len(policies), 1, policies)
                script_src = csp_directive(policies[0], "script-src")
                self.assertEqual(script_src, ["'self'"], policies[0])
                self.assertEqual(headers.get_all("X-Content-Type-Options"), ["nosniff"])
                if path == "/events":
                    self.assertEqual(headers.get("Content-Type").split(";")[0].strip(), "text/event-stream")
                if path == "/chart.js":
                    self.assertIn(b"Chart", body)
        # The DNS rebinding guard: only the bound address's names (and --allow-host) are served.
        port = self.port
        for host in ("127.0.0.1:%d" % port, "localhost:%d" % port, "[::1]:%d" % port):
            with self.subTest(host=host):
                self.assertEqual(http_request(port, "/", host=host)[0], 200)
        for host in ("evil.example", "evil.example:%d" % port, "127.0.0.1:%d" % (port + 1 if port < 65535 else 1),
                     "localhost.evil.example:%d" % port):
            for path in ("/", "/api/state", "/metrics", "/events"):
                with self.subTest(host=host, path=path):
                    status, headers, body = http_request(port, path, host=host)
                    self.assertEqual(status, 403)
                    self.assertNotIn(b"securemqtt_messages_verified_total", body)
                    self.assertNotIn(TEMP.encode(), body)
                    self.assertEqual(csp_directive(headers.get("Content-Security-Policy") or "", "script-src"),
                                     ["'self'"])
                    self.assertEqual(headers.get("X-Content-Type-Options"), "nosniff")

    def test_step_08_allow_host_names_are_served(self):
        # --allow-host dashboard.test: the name as a browser behind a proxy sends it, with and
        # without the port.
        for host in ("dashboard.test", "dashboard.test:%d" % self.port):
            with self.subTest(host=host):
                self.assertEqual(http_request(self.port, "/", host=host)[0], 200)

    def test_step_09_a_bounded_flood_leaves_the_page_responsive_and_the_feeds_capped(self):
        limits = self.state()["limits"]
        n_topics = 60
        per_topic = max(5, 3000 // SLOWDOWN // n_topics)
        n_tampered = max(300 // SLOWDOWN, limits["rejections"] + 50)  # more than the feed holds
        topics = [BASE + "flood/%02d" % i for i in range(n_topics)]
        signer = sm.Signer(self.key1, "device-1")

        def bad(topic):
            envelope = bytearray(signer.sign(topic, b"999"))
            envelope[-33] ^= 0x01  # bad_mac
            return topic, bytes(envelope)

        # Interleaved: each topic's readings in order, a tampered one after every `step`
        # genuine ones, the rest (at least the last) at the end.
        step = max(1, n_topics * per_topic // n_tampered)
        messages, tampered_left = [], n_tampered
        for j in range(per_topic):
            for i, topic in enumerate(topics):
                payload = ("%d.5" % j) if i % 2 else json.dumps({"id": "x", "v": j})
                messages.append((topic, signer.sign(topic, payload.encode())))
                if tampered_left > 1 and (j * n_topics + i + 1) % step == 0:
                    messages.append(bad(topic))
                    tampered_left -= 1
        messages += [bad(topics[k % n_topics]) for k in range(tampered_left)]
        self.assertEqual(len(messages), n_topics * per_topic + n_tampered)
        verified_goal = self.verified + n_topics * per_topic
        rejected_goal = dict(self.rejected, bad_mac=self.rejected["bad_mac"] + n_tampered)

        errors = []

        def flood():
            try:
                c = self.broker.raw_client("device-1")
                try:
                    infos = [c.publish(t, p, 1) for t, p in messages]
                    for info in infos:
                        info.wait_for_publish(timeout=TIMEOUT * 2)
                        if not info.is_published():
                            raise AssertionError("a flood message was not acknowledged")
                finally:
                    c.disconnect()
                    c.loop_stop()
            except BaseException as e:  # reported by the main thread
                errors.append(e)

        publisher = threading.Thread(target=flood, daemon=True)
        publisher.start()
        # While it arrives, the page keeps answering and never shows more than it may.
        answers = 0
        deadline = time.monotonic() + TIMEOUT * 4
        for _ in range(int(TIMEOUT * 4 / POLL) + 1):
            snap = self.snapshot()
            answers += 1
            self.assertLessEqual(len(snap["rejections"]), limits["rejections"])
            self.assertLessEqual(len(snap["topics"]), limits["topics"])
            if not publisher.is_alive() or time.monotonic() > deadline:
                break
            time.sleep(POLL)
        publisher.join(timeout=TIMEOUT)
        self.assertFalse(publisher.is_alive(), "the flood's publisher hung")
        self.assertEqual(errors, [])
        self.assertGreater(answers, 0)
        LiveDashboard.verified = verified_goal
        LiveDashboard.rejected = rejected_goal

        samples, state = self.wait_http(
            lambda s, st: metric(s, "securemqtt_messages_verified_total") == verified_goal and
            metric(s, "securemqtt_messages_rejected_total", reason="bad_mac") == rejected_goal["bad_mac"],
            "%d verified and %d bad_mac" % (verified_goal, rejected_goal["bad_mac"]), timeout=TIMEOUT * 2)
        total_rejected = sum(rejected_goal.values())
        snap = self.wait_page(lambda s: s["verified"] == str(verified_goal) and s["rejected"] == str(total_rejected),
                              "#verified-total %d and #rejected-total %d" % (verified_goal, total_rejected),
                              timeout=TIMEOUT * 2)
        state = self.state()
        self.assertEqual(state["stats"]["verified"], verified_goal)
        self.assertEqual(state["stats"]["rejected_by_reason"], rejected_goal)
        self.assertEqual(state["limits"], limits)
        # The rejection feed: full (more were rejected than it holds), the newest ones, newest first.
        self.assertEqual(len(state["rejections"]), limits["rejections"])
        snap = self.wait_page(lambda s: len(s["rejections"]) == limits["rejections"], "a full rejection feed")
        self.assertEqual([(r["reason"], r["topic"]) for r in snap["rejections"]],
                         [(r["reason"], r["topic"]) for r in reversed(state["rejections"])])
        self.assertEqual(snap["rejections"][0]["topic"], messages[-1][0])  # the last one sent was tampered
        self.assert_reasons(snap)
        # Topics and points: within their limits, the page showing what the server holds.
        self.assertLessEqual(len(state["topics"]), limits["topics"])
        self.assertEqual(len(set(t["topic"] for t in state["topics"])), len(state["topics"]))
        self.assertEqual(sorted(r["data_topic"] for r in snap["topics"]), sorted(t["topic"] for t in state["topics"]))
        for t in state["topics"]:
            self.assertLessEqual(len(t["points"]), limits["points_per_topic"], t["topic"])
        # The chart draws the first limits["chart_topics"] topics with numeric readings (a chart of
        # hundreds of lines says nothing): those drawn before the flood stay, the rest fill up.
        numeric = sorted(t["topic"] for t in state["topics"] if t["numeric"] is not None)
        drawn = sorted(d["label"] for d in snap["datasets"])
        self.assertEqual(len(drawn), min(len(numeric), limits["chart_topics"]), drawn)
        self.assertLessEqual(set(drawn), set(numeric))
        self.assertLessEqual(set(self.drawn_before_flood), set(drawn))
        for d in snap["datasets"]:
            self.assertLessEqual(len(d["data"]), limits["points_per_topic"], d["label"])
        kept_flood = [t for t in state["topics"] if t["topic"] in topics]
        self.assertGreater(len(kept_flood), 0)
        for t in kept_flood:
            i = topics.index(t["topic"])
            self.assertEqual(t["count"], per_topic, t["topic"])
            self.assertEqual(t["numeric"], (per_topic - 1) + (0.5 if i % 2 else 0), t["topic"])
        distinct = 5 + n_topics
        if distinct > limits["topics"]:
            self.assertGreater(state["topics_dropped"], 0)
        else:
            self.assertEqual(state["topics_dropped"], 0)
            self.assertEqual(len(state["topics"]), distinct)
        self.assertEqual((snap["live"], snap["connection"], snap["images"]), ("1", "connected", 0))

    def test_step_10_the_browser_console_has_no_errors(self):
        self.collect_console()
        severe = [e for e in self.console if e.get("level") == "SEVERE"]
        self.assertEqual(severe, [], "console errors (CSP violations, failed loads, exceptions)")

    def test_step_11_sigterm_ends_it_with_exit_0_and_one_stdout_line(self):
        rc = self.dashboard.stop()
        self.assertEqual(rc, 0, self.dashboard.stderr_tail())
        self.assertEqual(len(self.dashboard.out), 1, self.dashboard.out)
        # The page notices the stream closed.
        self.wait_page(lambda s: s["live"] == "0", 'body[data-live="0"] once the server is gone')


def raw_exchange(port, request, read_until=b"\r\n"):
    """Sends `request` bytes over a fresh socket; the first response line (bytes, may be empty)."""
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(request)
        answer = b""
        while read_until not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
        return answer.split(b"\r\n", 1)[0]


def http_connections(pid, port, peer_port=None):
    """How many accepted connections to `port` (from `peer_port`, if given) process `pid` holds
    open: its socket descriptors matched with the kernel's TCP table (the listening socket, and
    connections still waiting in the backlog, are not counted)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                local_port = int(fields[1].rsplit(":", 1)[1], 16)
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if local_port == port and fields[3] != "0A" and peer_port in (None, remote_port):
                    inodes.add(fields[9])
    held = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            held += 1
    return held


class HttpDefences(unittest.TestCase):
    """The HTTP side against clients that are not the page: bodies, other sites, crowds of idle
    connections, a client that never finishes its request, and SIGTERM at any moment. No browser;
    a broker for the certificates and the session."""

    @classmethod
    def setUpClass(cls):
        cls.broker = Broker()

    @classmethod
    def tearDownClass(cls):
        cls.broker.close()

    def start(self, *extra):
        args = [program("secure_dashboard")] + self.broker.tls_flags("monitor") + \
            self.broker.key_flags("device-1") + ["-t", "devices/#", "--http", "127.0.0.1:0", "-d"] + list(extra)
        d = BackgroundProgram(args)
        self.addCleanup(d.kill)
        d.wait(lambda: len(d.out) >= 1, "printed its URL line")
        d.port = int(URL_LINE.match(d.out[0]).group(1))
        return d

    def test_sigterm_at_any_moment_of_startup_ends_it(self):
        # httplib's stop() did nothing before its server ran: a SIGTERM just after the URL line
        # (before the session connected) left the program waiting for its listening thread forever.
        for attempt in range(6):
            with self.subTest(attempt=attempt):
                d = self.start()
                self.assertEqual(d.stop(), 0, d.stderr_tail())
        d = BackgroundProgram([program("secure_dashboard")] + self.broker.tls_flags("monitor") +
                             self.broker.key_flags("device-1") + ["-t", "devices/#", "--http", "127.0.0.1:0"])
        self.addCleanup(d.kill)
        self.assertIn(d.stop(), (0, -signal.SIGTERM))  # before or after its handler is in place: it ends

    def test_a_request_body_is_refused_unread(self):
        d = self.start()
        host = b"Host: 127.0.0.1:%d\r\n" % d.port
        # httplib would read a body of any length into memory before routing.
        self.assertEqual(raw_exchange(d.port, b"POST /api/state HTTP/1.1\r\n" + host +
                                      b"Transfer-Encoding: chunked\r\n\r\n" + b"1000\r\n" + b"x" * 4096),
                         b"HTTP/1.1 405 Method Not Allowed")
        self.assertEqual(raw_exchange(d.port, b"PUT / HTTP/1.1\r\n" + host + b"\r\n"),
                         b"HTTP/1.1 405 Method Not Allowed")
        self.assertEqual(raw_exchange(d.port, b"GET /api/state HTTP/1.1\r\n" + host +
                                      b"Content-Length: 100000000\r\n\r\n"), b"HTTP/1.1 400 Bad Request")
        self.assertEqual(raw_exchange(d.port, b"GET /api/state HTTP/1.1\r\n" + host + b"\r\n"), b"HTTP/1.1 200 OK")

    def test_a_refused_request_ends_its_connection_so_its_body_is_never_a_request(self):
        # httplib kept a connection open after a refusal, and read the refused request's body as
        # the next request: a cross-site POST could carry a plain GET past the Sec-Fetch rule.
        import socket
        d = self.start()
        host = b"Host: 127.0.0.1:%d\r\n" % d.port
        smuggled = b"GET /api/state HTTP/1.1\r\n" + host + b"\r\n"
        with socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT) as sock:
            sock.sendall(b"POST /metrics HTTP/1.1\r\n" + host + b"Sec-Fetch-Site: cross-site\r\n" +
                         b"Content-Length: %d\r\n\r\n" % len(smuggled))
            answer = b""
            while b"\r\n\r\n" not in answer:  # the refusal's headers
                chunk = sock.recv(4096)
                self.assertTrue(chunk, "closed before answering")
                answer += chunk
            try:
                sock.sendall(smuggled)
            except OSError:
                pass  # already closed: fine
            while True:  # everything else the server sends, until it closes
                try:
                    chunk = sock.recv(4096)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                answer += chunk
        self.assertTrue(answer.startswith(b"HTTP/1.1 405"), answer[:200])
        self.assertEqual(answer.count(b"HTTP/1.1 "), 1, answer[:600])

    def test_requests_from_other_sites_are_refused(self):
        d = self.start()
        host = b"Host: 127.0.0.1:%d\r\n" % d.port
        cases = [
            (b"/events", b"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n", b"403"),
            (b"/api/state", b"Sec-Fetch-Site: same-site\r\nSec-Fetch-Mode: cors\r\n", b"403"),
            (b"/api/state", b"Origin: http://evil.example\r\n", b"403"),
            (b"/api/state", b"Origin: null\r\n", b"403"),
            (b"/", b"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: no-cors\r\n", b"403"),
            # A link from elsewhere may open the page; the page's own requests are same-origin.
            (b"/", b"Sec-Fetch-Site: cross-site\r\nSec-Fetch-Mode: navigate\r\n", b"200"),
            (b"/api/state", b"Sec-Fetch-Site: same-origin\r\nOrigin: http://127.0.0.1:%d\r\n" % d.port, b"200"),
            (b"/metrics", b"Sec-Fetch-Site: none\r\n", b"200"),
            (b"/metrics", b"", b"200"),  # a scraper
        ]
        for path, headers, status in cases:
            with self.subTest(path=path, headers=headers):
                line = raw_exchange(d.port, b"GET " + path + b" HTTP/1.1\r\n" + host + headers + b"\r\n")
                self.assertEqual(line.split(b" ")[1], status, line)

    def test_a_crowd_of_idle_connections_holds_a_bounded_number_of_descriptors(self):
        import socket
        d = self.start()
        socks = []
        try:
            for _ in range(200):  # without waiting: beyond the listen backlog a connect would wait
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", d.port))
                socks.append(sock)
            # 12 being served, 48 queued and 1 in the accepting thread's hands at most; the rest
            # wait in the kernel's backlog. (Unbounded, all 200 were accepted at once.) A few looks
            # while the workers turn over.
            most = 0
            for _ in range(6):
                time.sleep(0.5)
                most = max(most, http_connections(d.proc.pid, d.port))
            self.assertGreater(most, 0)
            self.assertLessEqual(most, 12 + 48 + 1)
        finally:
            for sock in socks:
                sock.close()
        status, _, _ = http_request(d.port, "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(d.stop(), 0, d.stderr_tail())

    def test_a_client_that_never_finishes_its_request_does_not_keep_it_from_ending(self):
        import socket
        d = self.start()
        sock = socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n" % d.port)
        mine = sock.getsockname()[1]
        stop = threading.Event()

        def trickle():  # one header byte a second, well inside httplib's 5 s read timeout
            for _ in range(int(TIMEOUT * 3)):
                if stop.wait(1):
                    return
                try:
                    sock.sendall(b"X")
                except OSError:
                    return
        t = threading.Thread(target=trickle, daemon=True)
        t.start()
        self.addCleanup(t.join)
        self.addCleanup(stop.set)
        # The dashboard has accepted it (and an idle worker takes an accepted connection at once).
        for _ in range(int(TIMEOUT / POLL)):
            if http_connections(d.proc.pid, d.port, mine) == 1:
                break
            time.sleep(POLL)
        self.assertEqual(http_connections(d.proc.pid, d.port, mine), 1, "the connection was never accepted")
        self.assertEqual(d.stop(), 0, d.stderr_tail())
        self.assertIn("HTTP connections still open at exit", d.stderr_tail())


if __name__ == "__main__":
    main()
