#!/usr/bin/env python3
"""A development mail sink: a real SMTP server (aiosmtpd) that keeps every mail it receives and
shows them over HTTP. For loopback only: it accepts mail for anyone and sends nothing on.

  mailsink.py serve [--smtp 127.0.0.1:1025] [--http 127.0.0.1:8025] [--store FILE]
      Prints "mailsink smtp=HOST:PORT http=HOST:PORT" once both listen. Port 0 picks a free one.
      With --store, mail is appended to FILE (JSON lines) and read back at start.
  mailsink.py latest [ADDRESS] [--subject TEXT [--wait 30]] [--http 127.0.0.1:8025]
      Prints the newest mail (to ADDRESS; with --subject, the newest whose subject has TEXT,
      waiting up to --wait seconds for it), headers and text.
  mailsink.py last-id [--http 127.0.0.1:8025]
      Prints the id of the newest mail (0 when there is none).
  mailsink.py code ADDRESS [--after ID] [--subject TEXT] [--wait SECONDS] [--http 127.0.0.1:8025]
      Waits for a mail to ADDRESS newer than ID (whose subject has TEXT) and prints the
      six-digit code in it.
  The reading commands need only the standard library.

HTTP: GET / (the mailbox, newest first), GET /messages[?to=ADDRESS] (JSON, oldest first),
GET /healthz.
"""

import argparse
import html
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.parse
import urllib.request
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEPT = 10000


def split_address(value):
    host, _, port = value.rpartition(":")
    return host or "127.0.0.1", int(port)


def free_port(host):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Mailbox:
    def __init__(self, store):
        self.lock = threading.Lock()
        self.messages = []
        self.store = store
        if store:
            try:
                with open(store, encoding="utf-8") as f:
                    self.messages = [json.loads(line) for line in f if line.strip()][-KEPT:]
            except FileNotFoundError:
                pass
        self.next_id = max((m["id"] for m in self.messages), default=0) + 1
        self.stored = len(self.messages)
        self.compact()

    def compact(self):
        """Rewrites the store with only the mail kept in memory."""
        if self.store:
            with open(self.store + ".new", "w", encoding="utf-8") as f:
                f.writelines(json.dumps(m) + "\n" for m in self.messages)
            os.replace(self.store + ".new", self.store)
            self.stored = len(self.messages)

    def add(self, envelope):
        mail = message_from_bytes(envelope.content, policy=policy.default)
        body = mail.get_body(preferencelist=("plain", "html"))
        with self.lock:
            record = {
                "id": self.next_id,
                "received_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "from": envelope.mail_from,
                "to": [address.lower() for address in envelope.rcpt_tos],
                "subject": str(mail.get("Subject", "")),
                "message_id": str(mail.get("Message-ID", "")),
                "text": body.get_content() if body is not None else "",
            }
            self.next_id += 1
            self.messages.append(record)
            del self.messages[:-KEPT]
            if self.store:
                with open(self.store, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                self.stored += 1
                if self.stored > 2 * KEPT:
                    self.compact()

    def select(self, to):
        with self.lock:
            return [m for m in self.messages if not to or to.lower() in m["to"]]


class Handler:
    def __init__(self, mailbox):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.mailbox.add(envelope)
        return "250 OK: kept"


def http_handler(mailbox):
    class Page(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def send(self, status, content_type, body):
            data = body.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's name)
            url = urllib.parse.urlsplit(self.path)
            to = urllib.parse.parse_qs(url.query).get("to", [""])[0]
            if url.path == "/healthz":
                self.send(200, "application/json", '{"status":"ok"}')
            elif url.path == "/messages":
                self.send(200, "application/json", json.dumps(mailbox.select(to)))
            elif url.path == "/":
                rows = "".join(
                    "<article><h2>{}</h2><p>to {} at {}</p><pre>{}</pre></article>".format(
                        html.escape(m["subject"]), html.escape(", ".join(m["to"])),
                        html.escape(m["received_at"]), html.escape(m["text"]))
                    for m in reversed(mailbox.select(to)[-100:]))
                self.send(200, "text/html; charset=utf-8",
                          "<!doctype html><meta charset=utf-8><title>Development mailbox</title>"
                          "<style>body{font-family:sans-serif;max-width:50em;margin:auto}"
                          "article{border-bottom:1px solid #ccc}</style>"
                          "<h1>Development mailbox</h1><p>Newest first. Nothing here leaves this machine.</p>"
                          + (rows or "<p>No mail yet.</p>"))
            else:
                self.send(404, "application/json", '{"error":{"code":"not_found","message":"no such page"}}')

    return Page


def serve(args):
    from aiosmtpd.controller import Controller

    smtp_host, smtp_port = split_address(args.smtp)
    http_host, http_port = split_address(args.http)
    mailbox = Mailbox(args.store)
    controller = Controller(Handler(mailbox), hostname=smtp_host, port=smtp_port or free_port(smtp_host))
    controller.start()
    web = ThreadingHTTPServer((http_host, http_port), http_handler(mailbox))
    print(f"mailsink smtp={smtp_host}:{controller.port} http={http_host}:{web.server_address[1]}", flush=True)
    try:
        web.serve_forever()
    finally:
        controller.stop()


def read(http, address=None):
    query = "?" + urllib.parse.urlencode({"to": address}) if address else ""
    with urllib.request.urlopen(f"http://{http}/messages{query}", timeout=5) as response:
        return json.load(response)


def last_id(args):
    messages = read(args.http)
    print(messages[-1]["id"] if messages else 0)


def code(args):
    deadline = time.monotonic() + args.wait
    while True:
        newer = [m for m in read(args.http, args.address) if m["id"] > args.after and args.subject in m["subject"]]
        if newer:
            found = re.search(r"\b[0-9]{6}\b", newer[-1]["text"])
            if found:
                print(found.group(0))
                return
        if time.monotonic() > deadline:
            sys.exit(f"no code for {args.address} within {args.wait} s")
        time.sleep(0.1)


def latest(args):
    """The newest mail (to ADDRESS; with --subject, the newest whose subject has that text,
    waiting up to --wait seconds for it)."""
    deadline = time.monotonic() + args.wait
    while True:
        messages = [m for m in read(args.http, args.address) if args.subject in m["subject"]]
        if messages:
            break
        if not args.subject or time.monotonic() > deadline:
            to = " to " + args.address if args.address else ""
            about = f" about {args.subject!r}" if args.subject else ""
            sys.exit(f"no mail{to}{about} yet")
        time.sleep(0.1)
    m = messages[-1]
    print(f"To: {', '.join(m['to'])}\nSubject: {m['subject']}\nDate: {m['received_at']}\n\n{m['text']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    s = commands.add_parser("serve")
    s.add_argument("--smtp", default=os.environ.get("MAILSINK_SMTP", "127.0.0.1:1025"))
    s.add_argument("--http", default=os.environ.get("MAILSINK_HTTP", "127.0.0.1:8025"))
    s.add_argument("--store")
    s.set_defaults(run=serve)
    l = commands.add_parser("latest")
    l.add_argument("address", nargs="?")
    l.add_argument("--subject", default="")
    l.add_argument("--wait", type=float, default=30)
    l.add_argument("--http", default=os.environ.get("MAILSINK_HTTP", "127.0.0.1:8025"))
    l.set_defaults(run=latest)
    i = commands.add_parser("last-id")
    i.add_argument("--http", default=os.environ.get("MAILSINK_HTTP", "127.0.0.1:8025"))
    i.set_defaults(run=last_id)
    c = commands.add_parser("code")
    c.add_argument("address")
    c.add_argument("--after", type=int, default=0)
    c.add_argument("--subject", default="")
    c.add_argument("--wait", type=float, default=30)
    c.add_argument("--http", default=os.environ.get("MAILSINK_HTTP", "127.0.0.1:8025"))
    c.set_defaults(run=code)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
