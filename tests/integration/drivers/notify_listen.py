#!/usr/bin/python3
"""Stands in for systemd's notification socket: binds a datagram Unix
socket at argv[1] and appends each message it receives to argv[2], one
message per line with its fields separated by '|' (READY=1|STATUS=...),
flushed at once so that a test can poll the file. Runs until killed."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o777)  # PgCrab may run as another user
with open(out, "a", buffering=1) as f:
    while True:
        msg = sock.recv(4096).decode("utf-8", "replace")
        f.write("|".join(msg.strip("\n").split("\n")) + "\n")
