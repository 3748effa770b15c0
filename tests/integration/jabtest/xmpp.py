"""jabtest.xmpp — what the clients of a suite share: the server under test (Server: its address,
ports and pinned certificate), the namespaces, stream headers and PLAIN tokens, TLS contexts, and
the helpers that read stanzas (is_, stanza_error, roster_push_for, show)."""

import base64
import ssl
import xml.etree.ElementTree as ET

DOMAIN = 'localhost'

NS_CLIENT = 'jabber:client'
NS_STREAM = 'http://etherx.jabber.org/streams'
NS_STREAM_ERRORS = 'urn:ietf:params:xml:ns:xmpp-streams'
NS_STANZAS = 'urn:ietf:params:xml:ns:xmpp-stanzas'
NS_SASL = 'urn:ietf:params:xml:ns:xmpp-sasl'
NS_TLS = 'urn:ietf:params:xml:ns:xmpp-tls'
NS_BIND = 'urn:ietf:params:xml:ns:xmpp-bind'
NS_ROSTER = 'jabber:iq:roster'
NS_DELAY = 'urn:xmpp:delay'
NS_PING = 'urn:xmpp:ping'
NS_ACCEPT = 'jabber:component:accept'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'


class Server:
    """Where the clients of a suite connect: host, the STARTTLS port, the direct TLS port, the
    certificate they pin (None: no check), and the bound on every wait for the server (wait
    seconds)."""

    def __init__(self, host, port, tls_port, cafile=None, wait=5.0, domain=DOMAIN):
        self.host, self.port, self.tls_port = host, port, tls_port
        self.cafile, self.wait, self.domain = cafile, wait, domain

    def with_wait(self, wait):
        """The same server, with another bound on the waits."""
        return Server(self.host, self.port, self.tls_port, self.cafile, wait, self.domain)


def q(ns, name):
    return '{%s}%s' % (ns, name)


def local(tag):
    """An element's name without its namespace."""
    return tag.split('}', 1)[-1]


def show(el):
    """One stanza as text, for failure messages."""
    if el is None:
        return '(none)'
    text = ET.tostring(el, encoding='unicode')
    return text if len(text) < 600 else text[:600] + '...'


def xml_escape(text):
    return (text.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
            .replace("'", '&apos;').replace('"', '&quot;'))


def stream_header(to=DOMAIN, version='1.0', xmlns=NS_CLIENT, stream_ns=NS_STREAM, prolog=True):
    return ("%s<stream:stream xmlns='%s' xmlns:stream='%s'%s version='%s'>" % (
        "<?xml version='1.0'?>" if prolog else '', xmlns, stream_ns,
        " to='%s'" % to if to is not None else '', version))


def plain_token(user, password):
    """SASL PLAIN's initial response, base64: no authorization identity, user, password."""
    return base64.b64encode(('\0%s\0%s' % (user, password)).encode()).decode()


def plain_auth(user, password):
    return "<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, plain_token(user, password))


def bind_iq(resource, iq_id='bind'):
    return ("<iq type='set' id='%s'><bind xmlns='%s'><resource>%s</resource></bind></iq>" %
            (iq_id, NS_BIND, resource))


def tls_context(cafile=None):
    """Checks the server's certificate against cafile; with none, checks nothing."""
    ctx = ssl.create_default_context(cafile=cafile or None)
    if not cafile:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def is_(el, name, type_=None, from_=None, ns=NS_CLIENT):
    """el is <name/> in ns, of type type_ ('' = no type attribute) and from from_."""
    if el is None or el.tag != q(ns, name):
        return False
    if type_ is not None and (el.get('type') or '') != type_:
        return False
    if from_ is not None and el.get('from') != from_:
        return False
    return True


def stanza_error(el):
    """(type, condition) of a type='error' stanza, or None."""
    if el is None or el.get('type') != 'error':
        return None
    err = el.find(q(NS_CLIENT, 'error'))
    if err is None:
        return (None, None)
    for child in err:
        if child.tag.startswith('{%s}' % NS_STANZAS) and not child.tag.endswith('}text'):
            return (err.get('type'), local(child.tag))
    return (err.get('type'), None)


def roster_push_for(el, contact):
    """The <item/> for contact if el is a roster push (iq set with a roster query), else None."""
    if not is_(el, 'iq', 'set'):
        return None
    query = el.find(q(NS_ROSTER, 'query'))
    if query is None:
        return None
    for item in query.findall(q(NS_ROSTER, 'item')):
        if item.get('jid') == contact:
            return item
    return None


def sasl_condition(el):
    """'success' for <success/>; for <failure/>, its condition ('(none)' if it has none)."""
    if el.tag == q(NS_SASL, 'success'):
        return 'success'
    conds = [local(c.tag) for c in el if c.tag != q(NS_SASL, 'text')]
    return conds[0] if conds else '(none)'
