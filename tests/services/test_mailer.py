"""E-mail through a real local SMTP server (aiosmtpd): STARTTLS and implicit TLS with a verified
certificate (a throw-away CA made with openssl), AUTH with the configured user, a wrong password
or an untrusted certificate leaving the mail waiting, and links built from PUBLIC_URL (the sweeper
has no request context)."""
from __future__ import annotations

import shutil
import ssl
import subprocess
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.services.clock_support import clock_defs_dir, env  # noqa: F401
from tests.services.test_sla import Sink, free_port
from workflow_app.services import mailer, sla
from workflow_app.services.mailer import Mail, SmtpConfigError, SmtpMailer

USER, PASSWORD = "parkflow", "Mail#Secret2026"
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (it is its own CA for the client)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def server_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*map(str, certificate))
    return context


class Logins:
    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == \
            (USER.encode(), PASSWORD.encode())
        if ok:
            self.seen.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def starttls(certificate):
    sink, logins = Sink(), Logins()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), tls_context=server_context(certificate),
                            require_starttls=True, authenticator=logins, auth_require_tls=True)
    controller.start()
    yield sink, logins, controller.port
    controller.stop()


@pytest.fixture
def implicit_tls(certificate):
    sink, logins = Sink(), Logins()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port(), ssl_context=server_context(certificate),
                            authenticator=logins, auth_require_tls=False)
    controller.start()
    yield sink, logins, controller.port
    controller.stop()


MAIL = Mail("promo1@zhenhai.example", "待办：测试", "请办理", 7)


def test_starttls_with_login(starttls, certificate):
    sink, logins, port = starttls
    m = SmtpMailer("127.0.0.1", port, "parkflow@zhenhai.example", security="starttls", username=USER,
                   password=PASSWORD, ca_file=str(certificate[0]), base_url="https://parkflow.zhenhai.example/")
    assert m.send([MAIL]) == [None]
    assert logins.seen == [USER] and [e.rcpt_tos for e in sink.messages] == [["promo1@zhenhai.example"]]
    body = message_from_bytes(sink.messages[0].content).get_payload(decode=True).decode("utf-8")
    assert "https://parkflow.zhenhai.example/notifications/7" in body


def test_a_server_that_requires_starttls_refuses_plain_smtp(starttls):
    sink, _logins, port = starttls
    [error] = SmtpMailer("127.0.0.1", port).send([MAIL])
    assert error and not sink.messages


def test_a_wrong_password_leaves_the_mail_waiting(starttls, certificate):
    sink, logins, port = starttls
    m = SmtpMailer("127.0.0.1", port, security="starttls", username=USER, password="wrong",
                   ca_file=str(certificate[0]))
    [error] = m.send([MAIL])
    assert "Authentication" in error and not sink.messages and not logins.seen


def test_an_untrusted_certificate_is_refused(starttls):
    sink, _logins, port = starttls
    [error] = SmtpMailer("127.0.0.1", port, security="starttls", username=USER, password=PASSWORD).send([MAIL])
    assert "CERTIFICATE_VERIFY_FAILED" in error and not sink.messages


def test_implicit_tls_with_login(implicit_tls, certificate):
    sink, logins, port = implicit_tls
    m = SmtpMailer("127.0.0.1", port, security="ssl", username=USER, password=PASSWORD,
                   ca_file=str(certificate[0]))
    assert m.send([MAIL, MAIL]) == [None, None]
    assert logins.seen == [USER] and len(sink.messages) == 2


def test_the_configuration_is_checked_and_sets_the_ports():
    assert mailer.from_config({}) is None
    assert mailer.from_config({"SMTP_HOST": "mail.example", "SMTP_SECURITY": "ssl"}).port == 465
    assert mailer.from_config({"SMTP_HOST": "mail.example", "SMTP_SECURITY": "starttls"}).port == 587
    assert mailer.from_config({"SMTP_HOST": "mail.example"}).port == 25
    with pytest.raises(SmtpConfigError, match="in clear"):
        mailer.from_config({"SMTP_HOST": "mail.example", "SMTP_USER": "u", "SMTP_PASSWORD": "p"})
    with pytest.raises(SmtpConfigError, match="SMTP_SECURITY"):
        mailer.from_config({"SMTP_HOST": "mail.example", "SMTP_SECURITY": "tls"})


def test_the_sweeper_links_to_public_url(env, clock, starttls, certificate):
    """No request context in the sweeper: the link comes from PUBLIC_URL in the configuration."""
    sink, _logins, port = starttls
    env.start("task")
    configured = mailer.from_config({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": port, "SMTP_SECURITY": "starttls",
                                     "SMTP_USER": USER, "SMTP_PASSWORD": PASSWORD,
                                     "SMTP_CA_FILE": str(certificate[0]),
                                     "PUBLIC_URL": "https://parkflow.zhenhai.example"})
    stats = sla.sweep(env.db, env.workflow, clock.now, mailer=configured)
    assert stats.emails_sent == 2 and len(sink.messages) == 2
    ids = {n.id for n in env.notifications()}
    for envelope in sink.messages:
        body = message_from_bytes(envelope.content).get_payload(decode=True).decode("utf-8")
        link = body.split("https://parkflow.zhenhai.example/notifications/")[1].split()[0]
        assert int(link) in ids
