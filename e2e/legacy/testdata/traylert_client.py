"""The Traylert client's poll (IngoKl/Traylert traylert/traylert_client.pyw)
with the standard library only, for compat case 3.

The original does, every refresh_time seconds:

    r = requests.get(endpoint_override)
    data = jsonpickle.decode(r.text)          # {nonce, tag, ciphertext}: bytes
    info = json.loads(decrypt(data, key))     # traylert_crypto.py

jsonpickle and pycryptodome are not installed here, so:
  * jsonpickle.decode of this shape is json.loads, then every
    {"py/b64": s} becomes base64.decodebytes(s) (jsonpickle's util.b64decode:
    newlines allowed) and {"py/b85": s} base64.b85decode(s);
  * AES.new(key, AES.MODE_EAX, nonce).decrypt_and_verify(ciphertext, tag) is
    run by TraylertEAX.java (an EAX written from the paper on the JDK's AES),
    given with --decrypt; a failed tag check raises ValueError("MAC check
    failed") as pycryptodome does, which ends the client.

Usage: traylert_client.py --endpoint_override URL --key KEY --decrypt "java TraylertEAX.java"
Prints the decoded types and the system-info document as JSON.
"""

import argparse
import base64
import http.client
import json
import shlex
import subprocess
import sys
import urllib.parse


def requests_get(url):
    """GET url as requests.get does (its default headers), return the text."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=30)
    conn.putrequest("GET", u.path or "/", skip_accept_encoding=True)
    conn.putheader("User-Agent", "python-requests/2.21.0")
    conn.putheader("Accept-Encoding", "gzip, deflate")
    conn.putheader("Accept", "*/*")
    conn.putheader("Connection", "keep-alive")
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    if resp.status != 200:
        raise RuntimeError("GET %s: HTTP %d" % (url, resp.status))
    # requests decodes text/html without a charset as ISO-8859-1, with one as given
    return body.decode("utf-8")


def jsonpickle_decode(text):
    """jsonpickle.decode for JSON whose bytes are py/b64 or py/b85 tags."""

    def restore(o):
        if isinstance(o, dict):
            if set(o) == {"py/b64"}:
                return base64.decodebytes(o["py/b64"].encode("ascii"))
            if set(o) == {"py/b85"}:
                return base64.b85decode(o["py/b85"].encode("ascii"))
            return {k: restore(v) for k, v in o.items()}
        if isinstance(o, list):
            return [restore(v) for v in o]
        return o

    return restore(json.loads(text))


def decrypt(data, key, decrypter):
    """traylert_crypto.decrypt: EAX decrypt_and_verify with key's UTF-8 bytes."""
    cmd = shlex.split(decrypter) + [key, data["nonce"].hex(), data["tag"].hex(), data["ciphertext"].hex()]
    p = subprocess.run(cmd, capture_output=True, timeout=120)
    if p.returncode == 2:
        raise ValueError(p.stderr.decode().strip())
    if p.returncode != 0:
        raise RuntimeError("decrypter failed: %s" % p.stderr.decode())
    return p.stdout.decode("utf-8")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint_override", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--decrypt", required=True)
    a = ap.parse_args()
    data = jsonpickle_decode(requests_get(a.endpoint_override))
    types = {k: type(v).__name__ for k, v in data.items()}
    info = json.loads(decrypt(data, a.key, a.decrypt))
    # what the tray shows: the alerts, and "<key> - <value>" for each non-list value
    menu = ["%s - %s" % (k, v) for k, v in info.items() if not isinstance(v, list)]
    json.dump({"types": types, "info": info, "menu": menu}, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
