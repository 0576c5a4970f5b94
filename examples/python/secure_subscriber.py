#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Subscribes over mutual TLS and prints only verified securemqtt messages (mosquitto_sub's flags).

    secure_subscriber.py -h localhost -p 8883 -t 'devices/#' -v -q 1 \\
        --cafile ca.pem --cert monitor.pem --key monitor.key --key-id device-1 --hmac-key device-1.hex

Verified payloads go to stdout ("topic payload" with -v); each rejected message is one line on
stderr: "rejected: REASON on topic 'TOPIC'". Exit status: 0 after -C N verified messages,
1 connection failure, 2 bad usage, 27 timeout (-W).
"""

import sys
import threading
import time

import paho.mqtt.client as mqtt

import _cli
import securemqtt_envelope as sm


def main():
    p = _cli.parser("Print verified messages; report rejected ones.")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("-C", "--count", type=int, default=0)
    p.add_argument("-W", "--timeout", type=int, default=0)
    args = p.parse_args()
    verifier = sm.Verifier(_cli.keys(args))
    done = threading.Event()
    received = [0]

    def on_message(_client, _userdata, msg):
        try:
            message = verifier.verify(msg.topic, msg.payload, msg.retain)
        except sm.Rejected as r:
            print("rejected: %s on topic '%s'" % (r.reason, msg.topic), file=sys.stderr, flush=True)
            return
        if args.count and received[0] >= args.count:
            return
        text = message.payload.decode("utf-8", "replace")
        print(("%s %s" % (msg.topic, text)) if args.verbose else text, flush=True)
        received[0] += 1
        if args.count and received[0] >= args.count:
            done.set()

    def on_connect(client, _userdata, _flags, rc):
        if rc == 0:
            for t in args.topic:
                client.subscribe(t, args.qos)

    client = _cli.client(mqtt, args)
    client.on_message = on_message
    client.on_connect = on_connect
    try:
        client.connect(args.host, args.port, args.keepalive)
    except Exception as e:
        print("secure_subscriber.py: connect to %s:%d failed: %s" % (args.host, args.port, e), file=sys.stderr)
        return 1
    client.loop_start()
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while not done.wait(0.1):
            if deadline and time.monotonic() > deadline:
                print("secure_subscriber.py: timed out after %d s" % args.timeout, file=sys.stderr)
                return 27
    except KeyboardInterrupt:
        pass
    client.disconnect()
    client.loop_stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
