#!/usr/bin/python3
"""Stands in for systemd's notification socket: binds a datagram Unix
socket at argv[1] and appends each message it receives to argv[2], one
message per line with its fields separated by '|' (READY=1|STATUS=...),
flushed at once so that a test can poll the file. A message that carries
descriptors (SCM_RIGHTS: FDSTORE=1) gets a last field FDS=<count>, and,
like systemd's fd store, the descriptors are kept.

With argv[3] (a trigger file) and a command after it, this is also
systemd restarting the service: once the trigger file exists, the command
is started (a line RELAUNCHED=<pid>) with the stored descriptors at 3, 4, ... and LISTEN_FDS,
LISTEN_PID and LISTEN_FDNAMES set, as a unit's ExecStart would be. Runs
until killed."""
import array
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
trigger = sys.argv[3] if len(sys.argv) > 4 else None
command = sys.argv[4:]
if os.path.exists(path):
    os.unlink(path)
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(path)
os.chmod(path, 0o777)  # PgCrab may run as another user
sock.settimeout(0.2 if trigger else None)
store = []  # (fd, name)


def relaunch(f):
    pid = os.fork()
    if pid:
        f.write("RELAUNCHED=%d\n" % pid)
        return
    fds = [fd for fd, _ in store]
    # out of the way first, then to 3, 4, ...
    high = [os.dup(fd) for fd in fds]
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i, inheritable=True)
    os.environ["LISTEN_FDS"] = str(len(fds))
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDNAMES"] = ":".join(name for _, name in store)
    os.execv(command[0], command)


with open(out, "a", buffering=1) as f:
    while True:
        if trigger and os.path.exists(trigger):
            os.unlink(trigger)
            relaunch(f)
        try:
            data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(64 * 4))
        except socket.timeout:
            continue
        fields = data.decode("utf-8", "replace").strip("\n").split("\n")
        fds = array.array("i")
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(cdata[:len(cdata) - len(cdata) % fds.itemsize])
        if fds:
            name = next((x[7:] for x in fields if x.startswith("FDNAME=")), "stored")
            store.extend((fd, name) for fd in fds)
            fields.append("FDS=%d" % len(fds))
        f.write("|".join(fields) + "\n")
