#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""secure_dashboard under a flood: how many messages a second it keeps up with, and its memory
over time, with a headless Chromium showing the page throughout (docs/dashboard.md reports it).

    /usr/bin/python3 bench/dashboard_flood.py [--seconds 600] [--rate 0] [--topics 600]
                                                [--reject-every 10] [--no-browser]

A local Mosquitto (mutual TLS, loopback), secure_dashboard (SECUREMQTT_BIN, default
build/release/examples) subscribed to devices/#, and two publishing threads signing with the
Python reference (device-1's key) over paho-mqtt at QoS 1: one message in --reject-every is
tampered (rejected as bad_mac). --rate 0 publishes as fast as the publishers can; N paces them to
N messages a second. --topics spreads the messages over that many topics (above the
dashboard's 500-row cap: the rest are counted, not shown). Every 10 s it prints the dashboard's
verified and rejected totals (/metrics), the rate since the last sample, its resident memory
and CPU time, and how far the page's own verified total lags. A measurement, not a test: it
asserts nothing beyond the dashboard staying up and the page answering.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
os.environ.setdefault("SECUREMQTT_BIN", os.path.join(ROOT, "build", "release", "examples"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import sm  # noqa: E402


def metrics(url):
    text = urllib.request.urlopen(url + "metrics", timeout=30).read().decode()
    verified = int(re.search(r"^securemqtt_messages_verified_total (\d+)$", text, re.M).group(1))
    rejected = sum(int(n) for n in re.findall(r"^securemqtt_messages_rejected_total\{[^}]*\} (\d+)$", text, re.M))
    return verified, rejected


def process_figures(pid):
    with open("/proc/%d/status" % pid) as f:
        rss_kib = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return rss_kib / 1024, cpu_s


class Publisher(threading.Thread):
    def __init__(self, broker, index, args, deadline):
        super().__init__(daemon=True)
        self.client = broker.raw_client("device-1")
        self.signer = sm.Signer(sm.load_key_file(broker.keys["device-1"]), "device-1")
        self.index, self.args, self.deadline = index, args, deadline
        self.sent = self.tampered = 0

    def run(self):
        rate = self.args.rate / 2 if self.args.rate else 0
        start = time.monotonic()
        n = 0
        while time.monotonic() < self.deadline:
            n += 1
            topic = "devices/device-1/flood/%d" % ((n * 2 + self.index) % self.args.topics)
            envelope = bytearray(self.signer.sign(topic, b"%.2f" % (20 + (n % 100) / 10)))
            if n % self.args.reject_every == 0:
                envelope[-33] ^= 1
                self.tampered += 1
            info = self.client.publish(topic, bytes(envelope), 1)
            self.sent += 1
            if n % 200 == 0:
                info.wait_for_publish(timeout=60)  # keep the client's queue short
            if rate:
                ahead = n / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
        self.client.disconnect()
        self.client.loop_stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600)
    parser.add_argument("--rate", type=int, default=0, help="messages a second in all; 0: as fast as possible")
    parser.add_argument("--topics", type=int, default=600)
    parser.add_argument("--reject-every", type=int, default=10)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 3600:
        parser.error("--seconds: 1 to 3600")

    broker = harness.Broker()
    work = tempfile.mkdtemp(prefix="securemqtt-flood-")
    dashboard = driver = None
    try:
        dashboard = subprocess.Popen(
            [harness.program("secure_dashboard"), "-t", "devices/#", "-q", "1", "--http", "127.0.0.1:0"] +
            broker.tls_flags("monitor") + broker.key_flags("device-1"),
            stdout=subprocess.PIPE, stderr=open(os.path.join(work, "dashboard.log"), "w"), text=True)
        url = dashboard.stdout.readline().split()[-1]
        for _ in range(300):  # connected: /metrics says so (at most 30 s)
            if "securemqtt_connected 1" in urllib.request.urlopen(url + "metrics", timeout=30).read().decode():
                break
            time.sleep(0.1)
        if not args.no_browser:
            from selenium import webdriver
            from selenium.webdriver.chrome.service import Service
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--user-data-dir=" + os.path.join(work, "chromium"), "--window-size=1280,1100"):
                options.add_argument(flag)
            driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
            driver.set_script_timeout(60)
            driver.get(url)

        deadline = time.monotonic() + args.seconds
        publishers = [Publisher(broker, i, args, deadline) for i in range(2)]
        for p in publishers:
            p.start()
        print("%6s %10s %10s %9s %9s %9s %10s" % ("t/s", "verified", "rejected", "msg/s", "RSS MiB", "CPU s", "page lag"))
        begin = last_t = time.monotonic()
        last_total = 0
        while any(p.is_alive() for p in publishers):
            time.sleep(10)
            now = time.monotonic()
            verified, rejected = metrics(url)
            rss, cpu = process_figures(dashboard.pid)
            lag = ""
            if driver is not None:
                shown = int(driver.execute_script("return document.getElementById('verified-total').textContent") or 0)
                lag = str(verified - shown)
            total = verified + rejected
            print("%6.0f %10d %10d %9.0f %9.1f %9.1f %10s" % (now - begin, verified, rejected,
                                                              (total - last_total) / (now - last_t), rss, cpu, lag),
                  flush=True)
            last_total, last_t = total, now
            if dashboard.poll() is not None:
                raise SystemExit("secure_dashboard ended: exit %s" % dashboard.returncode)
            if now - begin > args.seconds + 120:
                break
        sent = sum(p.sent for p in publishers)
        tampered = sum(p.tampered for p in publishers)
        for _ in range(600):  # what was still in flight arrives (at most 60 s)
            verified, rejected = metrics(url)
            if verified + rejected >= sent:
                break
            time.sleep(0.1)
        print("published %d (%d tampered) in %d s; the dashboard verified %d and rejected %d" % (
            sent, tampered, args.seconds, verified, rejected))
        if driver is not None:
            rows = driver.execute_script("return document.querySelectorAll('#topics tbody tr').length")
            feed = driver.execute_script("return document.querySelectorAll('#rejections tbody tr').length")
            print("page: %d topic rows, %d rejection rows" % (rows, feed))
    finally:
        if driver is not None:
            driver.quit()
        if dashboard is not None:
            dashboard.terminate()
            dashboard.wait(timeout=60)
        broker.close()


if __name__ == "__main__":
    main()
