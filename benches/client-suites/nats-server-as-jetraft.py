#!/usr/bin/env python3
"""Stands in for `nats-server` in a client library's test harness: reads
nats-server's command line (-p, -m, -a, -sd; the rest is ignored) and
execs a single jetraft node on those ports. JETRAFT names the binary."""
import os, socket, sys, tempfile

JETRAFT = os.environ.get("JETRAFT", "target/release/jetraft")

def main(argv):
    port, http_port, host, store_dir = "4222", "8222", "127.0.0.1", None
    ignored = []
    i = 0
    # flags that take a value (ignored by jetraft)
    with_val = {"--user", "--pass", "--auth", "--tlscert", "--tlskey", "--tlscacert",
                "--cluster_listen", "--routes", "--cluster_name", "--config", "-c",
                "--name", "-n", "--cluster"}
    while i < len(argv):
        a = argv[i]
        def val():
            nonlocal i
            if "=" in a:
                return a.split("=", 1)[1]
            i += 1
            return argv[i]
        key = a.split("=", 1)[0]
        if key in ("-p", "--port"):
            port = val()
        elif key in ("-m", "--http_port"):
            http_port = val()
        elif key in ("-a", "--addr", "--net"):
            host = val()
        elif key in ("-sd", "--store_dir"):
            store_dir = val()
        elif key in with_val:
            ignored.append((a, val()))
        else:
            ignored.append((a,))   # -js, --tls, --tlsverify, -DV ...
        i += 1
    if not store_dir:
        store_dir = tempfile.mkdtemp(prefix="jetraft-")
    s = socket.socket(); s.bind(("127.0.0.1", 0)); cport = s.getsockname()[1]; s.close()
    args = [JETRAFT, "server", "--name", "n1", "--data-dir", store_dir,
            "--listen", f"{host}:{port}", "--cluster-listen", f"127.0.0.1:{cport}",
            "--http-listen", f"{host}:{http_port}"]
    if os.environ.get("WRAP_DEBUG"):
        print("wrap-jetraft exec:", args, "ignored:", ignored, file=sys.stderr)
    os.execv(JETRAFT, args)

main(sys.argv[1:])
