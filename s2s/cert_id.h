/* s2s/cert_id.h — whether a peer's certificate names an XMPP domain as a server (RFC 6125, RFC 6120
 * §13.7.1.2): the identity half of deciding between SASL EXTERNAL and dialback. Whether the
 * certificate chains to a trust anchor is the TLS layer's (s2s/s2s_tls.h); this file only reads
 * names.
 *
 * Identifiers accepted for domain, compared case-insensitively in ASCII (domain in its A-label
 * form, at most 253 characters):
 *   - SRV-ID: subjectAltName otherName id-on-dnsSRV (1.3.6.1.5.5.7.8.7), an IA5String equal to
 *     "_xmpp-server.DOMAIN" or "_xmpps-server.DOMAIN" (XEP-0368). Other services (_imap...) never.
 *   - XmppAddr: otherName id-on-xmppAddr (1.3.6.1.5.5.7.8.5), a UTF8String equal to DOMAIN.
 *   - DNS-ID: dNSName equal to DOMAIN, or a wildcard by RFC 6125 §6.4.3 as OpenSSL's
 *     X509_check_host applies it with X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS: '*' only as the whole
 *     left-most label, matching exactly one non-empty label ("*.example.com" names
 *     "a.example.com", not "a.b.example.com" nor "example.com"), and at least two labels after it
 *     ("*.com" names nothing). No public-suffix list: "*.co.uk" is accepted as OpenSSL would.
 *     A presented name with one trailing dot is compared without it.
 *   - CN-ID: a subject commonName, under the DNS-ID rules, only when the certificate has no
 *     subjectAltName of the DNS, URI, SRV or XmppAddr kinds (RFC 6125 §6.4.4).
 * Values of the wrong ASN.1 type, holding a NUL byte or too long are ignored (they still count as
 * present for the CN rule). A certificate with two subjectAltName extensions names nothing.
 *
 * Thread rules: none; the certificate is only read.
 */
#ifndef JABSHARD_S2S_CERT_ID_H
#define JABSHARD_S2S_CERT_ID_H

#include <stdbool.h>

#include <openssl/x509.h>

bool s2s_cert_names_domain(X509 *cert, const char *domain);

#endif
