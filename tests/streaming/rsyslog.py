"""Debian's rsyslogd for the syslog tests: a child process (``rsyslogd -n``) on a free loopback
port, imtcp for plain TCP (RFC 6587 octet counting) or imtcp with the ``ossl`` netstream
driver for TLS (RFC 5425), with a CA and server certificate made here with ``cryptography``.

rsyslog writes each message twice: as received (``%rawmsg%``, to compare the whole RFC 5424
text with what was meant to be sent) and as it parsed it (PRI, timestamp, host name, app name,
process id, MSGID, the structured data decoded by ``mmpstrucdata``, MSG), so a message rsyslog
could not read as RFC 5424 fails a test too. Control characters are kept as received
(``parser.escapeControlCharactersOnReceive="off"``) and messages up to 64 KiB accepted.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

RSYSLOGD = Path("/usr/sbin/rsyslogd")
INSTALL = "apt-get install -y rsyslog rsyslog-openssl"


def rsyslogd() -> Path:
    """The rsyslogd binary; skips the test without it (fails it under ``CI=true``)."""
    if not RSYSLOGD.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"rsyslogd is required under CI=true: {INSTALL}")
        pytest.skip(f"rsyslogd is not installed ({INSTALL})")
    return RSYSLOGD


def require_tls_driver() -> None:
    """Skips the test without rsyslog's OpenSSL netstream driver (fails it under ``CI=true``)."""
    if not any(Path("/usr/lib").glob("*/rsyslog/lmnsd_ossl.so")):
        if os.environ.get("CI") == "true":
            pytest.fail(f"rsyslog's ossl driver is required under CI=true: {INSTALL}")
        pytest.skip(f"rsyslog's ossl driver is not installed ({INSTALL})")


@dataclass(frozen=True)
class Certificates:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost (PEM files)."""

    ca: Path
    cert: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificates(directory: Path) -> Certificates:
    """A test CA and a server certificate of its, valid for a day, in ``directory``."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("dstrail test CA"))
        .issuer_name(_name("dstrail test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = Certificates(
        ca=directory / "ca.pem", cert=directory / "cert.pem", key=directory / "key.pem"
    )
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Rsyslog:
    """One rsyslogd child on a loopback port (the same port across restarts)."""

    def __init__(self, binary: Path, directory: Path, tls: Certificates | None) -> None:
        self.binary = binary
        self.directory = directory
        self.tls = tls
        self.port = free_port()
        self.raw = directory / "raw.log"
        self.parsed = directory / "parsed.log"
        self.output = directory / "rsyslogd.out"
        self.process: subprocess.Popen[bytes] | None = None
        self.config = directory / "rsyslog.conf"
        self.config.write_text(self._config())

    def _config(self) -> str:
        driver = ""
        module = 'module(load="imtcp")'
        if self.tls is not None:
            driver = (
                f' defaultNetstreamDriver="ossl" defaultNetstreamDriverCAFile="{self.tls.ca}"'
                f' defaultNetstreamDriverCertFile="{self.tls.cert}"'
                f' defaultNetstreamDriverKeyFile="{self.tls.key}"'
            )
            module = (
                'module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1"'
                ' streamDriver.authMode="anon")'
            )
        sd = "$!rfc5424-sd!dstrail@32473"
        fields = (
            "%pri%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|"
            f"%{sd}!seq%|%{sd}!eventId%|%msg%"
        )
        return f"""
global(workDirectory="{self.directory}" maxMessageSize="64k"
       parser.escapeControlCharactersOnReceive="off"{driver})
{module}
module(load="mmpstrucdata")
input(type="imtcp" address="127.0.0.1" port="{self.port}" ruleset="received")
template(name="raw" type="string" string="%rawmsg%\\n")
template(name="parsed" type="string" string="{fields}\\n")
ruleset(name="received") {{
  action(type="omfile" file="{self.raw}" template="raw")
  action(type="mmpstrucdata" sd_name.lowercase="off")
  action(type="omfile" file="{self.parsed}" template="parsed")
}}
"""

    def start(self) -> None:
        """Start it and wait until it listens."""
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(
                [str(self.binary), "-n", "-f", str(self.config), "-i", str(self.directory / "pid")],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"rsyslogd exited ({self.process.returncode}): {self.output.read_text()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        pytest.fail("rsyslogd did not listen within 10 s")

    def stop(self) -> None:
        """Stop it (SIGTERM) and wait for it to exit."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)
        self.process = None

    def lines(self, path: Path, count: int) -> list[str]:
        """The lines rsyslog wrote to ``path`` once there are ``count`` (waits up to 10 s)."""
        deadline = time.monotonic() + 10
        found: list[str] = []
        while time.monotonic() < deadline:
            found = path.read_text().split("\n")[:-1] if path.exists() else []
            if len(found) >= count:
                return found
            time.sleep(0.05)
        pytest.fail(f"rsyslog wrote {len(found)} of {count} lines to {path.name}: {found}")
