"""watchTower's Python client and its test program (lucasmouilleron/watchTower
clientPython/client.py and clientPython/test.py), with the standard library
only, for compat case 27.

The original uses requests with verify=False, timeout=10, header "password"
and json= bodies; success needs HTTP 200 and result == 200, anything else
raises. requests is not installed here, so the requests go out through
http.client (what urllib uses underneath) with the same header names,
casing and order as requests sends them: urllib.request itself would
capitalise "password" to "Password". TLS verification is off, as the
original's verify=False.

Usage: watchtower_client.py URL PORT PASSWORD [CHECK_EVERY]
  e.g. watchtower_client.py https://localhost 4443 "change me"
test.py's HearbeatManager runs until the process is killed; here it runs
until its first pulse (checking every CHECK_EVERY seconds, default 5, as
the original), then is interrupted, which cancels its service.
"""

import http.client
import json
import ssl
import sys
import threading
import time
import urllib.parse


class client:
    def __init__(self, url, port, password):
        self.base = "%s:%s" % (url, port)
        self.password = password

    def _request(self, method, path, params=None, body=None):
        u = urllib.parse.urlsplit(self.base)
        if u.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False  # requests' verify=False
            ctx.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=10, context=ctx)
        else:
            conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
        if params:
            path += "?" + urllib.parse.urlencode(params)
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("User-Agent", "python-requests/2.19.1")
        conn.putheader("Accept-Encoding", "gzip, deflate")
        conn.putheader("Accept", "*/*")
        conn.putheader("Connection", "keep-alive")
        conn.putheader("password", self.password)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            conn.putheader("Content-Length", str(len(data)))
            conn.putheader("Content-Type", "application/json")
        conn.endheaders(data)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8")
        conn.close()
        if resp.status != 200:
            raise Exception("HTTP %d: %s" % (resp.status, text))
        r = json.loads(text)
        if r.get("result") != 200:
            raise Exception("result %s: %s" % (r.get("result"), r.get("hint")))
        return r

    def pulse(self, service, alertType, alertTarget, nextIn):
        body = {"service": service, "alertType": alertType, "alertTarget": alertTarget, "nextIn": nextIn}
        return self._request("POST", "/heartbeat", body=body)

    def cancel(self, service):
        return self._request("DELETE", "/heartbeat", body={"service": service})

    def add(self, service, message, level=0, inThread=False, throwsException=False):
        def do():
            try:
                return self._request("POST", "/event", body={"service": service, "level": level, "message": message})
            except Exception as e:
                if throwsException:
                    raise
                print("watchTower add failed: %s" % e)

        if inThread:
            threading.Thread(target=do, daemon=True).start()
            return None
        return do()

    def heartbeats(self):
        return self._request("GET", "/heartbeats")["heartBeats"]

    def events(self, dayFrom=None, dayTo=None, service=None, level=None, message=None):
        params = [(k, v) for k, v in (("service", service), ("level", level), ("message", message),
                                      ("from", dayFrom), ("to", dayTo)) if v is not None]
        return self._request("GET", "/events", params=params)["events"]


class HearbeatManager(threading.Thread):
    """Pulses service with nextIn=freq when more than freq/2 s passed since
    the last pulse, checking every check_every s; cancels on interrupt()."""

    def __init__(self, service, url, port, password, alertType, alertTarget, freq, check_every=5):
        threading.Thread.__init__(self, daemon=True)
        self.client = client(url, port, password)
        self.service, self.alertType, self.alertTarget, self.freq = service, alertType, alertTarget, freq
        self.check_every = check_every
        self.last = 0
        self.pulses = 0
        self.pulsed = threading.Event()
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            if time.time() - self.last > self.freq / 2:
                self.client.pulse(self.service, self.alertType, self.alertTarget, self.freq)
                self.last = time.time()
                self.pulses += 1
                self.pulsed.set()
            self.stop.wait(self.check_every)

    def interrupt(self):
        self.stop.set()
        self.join()
        self.client.cancel(self.service)


def main():
    url, port, password = sys.argv[1], sys.argv[2], sys.argv[3]
    check_every = float(sys.argv[4]) if len(sys.argv) > 4 else 5
    c = client(url, port, password)
    print(json.dumps(c.pulse("testPython", "pushover", "pushoverTargetID", 60)))
    print(json.dumps(c.cancel("testPython")))
    print(json.dumps(c.heartbeats()))
    print(json.dumps(c.add("test4", "my m\"es\nsage", 4, throwsException=True)))
    print(json.dumps(c.events()))
    hm = HearbeatManager("my service", url, port, password, "pushover", "pushoverTargetID", 10, check_every)
    hm.start()
    if not hm.pulsed.wait(60):
        raise Exception("the heartbeat manager did not pulse")
    hm.interrupt()
    print(json.dumps({"manager_pulses": hm.pulses}))


if __name__ == "__main__":
    main()
