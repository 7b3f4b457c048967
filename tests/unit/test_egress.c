/*
 * encoder-ffmpeg's egress policy, compiled in from the plugin's source
 * (plugins/encoder-ffmpeg/egress.c) and the public header
 * include/webencode/netaddr.h:
 *   - address classification (IPv4, IPv6, IPv4 embedded in IPv6), the one
 *     table the kernel's we_net_addr_private uses too;
 *   - CIDR entries and lists (host bits, bad entries, IPv4-mapped matching)
 *     and the policy (allow_private, allow list);
 *   - the kernel's we_net_host_public_except and the job source check with
 *     SOURCE_ALLOW_CIDRS;
 *   - request parsing (CONNECT, absolute-form, bad lines, methods,
 *     credentials, bodies, oversized headers) and the origin-form rewrite;
 *   - a live proxy on loopback driven by a raw socket client: a CONNECT
 *     tunnel, a CONNECT to a refused address (403, recorded, no connection
 *     made), an absolute-form GET rewritten, a keep-alive request for
 *     another host cut, malformed and oversized requests, the connection
 *     cap, and stop with connections still open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../plugins/encoder-ffmpeg/egress.c"

#include "api_jobs.h"
#include "we_netpolicy.h"

#include <arpa/inet.h>
#include <poll.h>

/* ---- addresses ------------------------------------------------------------------ */

/* A union, not a sockaddr_storage cast to struct sockaddr: with
 * we_ip_private inlined, GCC -O2 may read sa_family from the storage's
 * initializer (strict aliasing) and call every address internal. */
static bool private_text(const char *text)
{
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } u = {0};
    if (inet_pton(AF_INET, text, &u.in.sin_addr) == 1)
        u.in.sin_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &u.in6.sin6_addr) == 1)
        u.in6.sin6_family = AF_INET6;
    else
        fail_msg("bad test address %s", text);
    return we_ip_private(&u.sa);
}

static void test_classification(void **state)
{
    (void)state;
    static const char *const internal[] = {
        "0.0.0.0",
        "10.1.2.3",
        "100.64.0.1",
        "100.127.255.255",
        "127.0.0.1",
        "127.255.255.254",
        "169.254.169.254",
        "172.16.0.1",
        "172.31.255.255",
        "192.0.0.8",
        "192.168.1.1",
        "198.18.0.1",
        "224.0.0.1",
        "239.255.255.250",
        "255.255.255.255",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::10.0.0.1",
        "64:ff9b::a9fe:a9fe",
        "2002:a9fe:a9fe::1",
        "::ffff:0.0.0.0",
    };
    static const char *const public[] = {
        "1.1.1.1",        "8.8.8.8",          "93.184.216.34",        "100.63.255.255",
        "100.128.0.0",    "172.15.255.255",   "172.32.0.0",           "192.0.1.1",
        "198.17.255.255", "223.255.255.255",  "2001:4860:4860::8888", "2606:4700::1111",
        "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1",      "fbff::1",
    };
    for (size_t i = 0; i < sizeof internal / sizeof *internal; i++)
        if (!private_text(internal[i]))
            fail_msg("%s should be internal", internal[i]);
    for (size_t i = 0; i < sizeof public / sizeof *public; i++)
        if (private_text(public[i]))
            fail_msg("%s should be public", public[i]);
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_true(we_ip_private(&un));
}

static void sa_of(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, text, &((struct sockaddr_in *)ss)->sin_addr) == 1)
        ss->ss_family = AF_INET;
    else if (inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1)
        ss->ss_family = AF_INET6;
    else
        fail_msg("bad test address %s", text);
}

static bool cidr_has(const char *cidr, const char *addr)
{
    we_ip_cidr c;
    struct sockaddr_storage ss;
    if (we_ip_cidr_parse(cidr, strlen(cidr), &c) != 0)
        fail_msg("%s should parse", cidr);
    sa_of(addr, &ss);
    return we_ip_cidr_match(&c, (struct sockaddr *)&ss);
}

static void test_cidr(void **state)
{
    (void)state;
    assert_true(cidr_has("127.0.0.1/32", "127.0.0.1"));
    assert_false(cidr_has("127.0.0.1/32", "127.0.0.2"));
    assert_true(cidr_has("127.0.0.1", "127.0.0.1")); /* no /bits: one host */
    assert_false(cidr_has("127.0.0.1", "127.0.0.2"));
    assert_true(cidr_has("10.0.0.0/8", "10.255.1.2"));
    assert_false(cidr_has("10.0.0.0/8", "11.0.0.0"));
    assert_true(cidr_has("10.9.9.9/8", "10.1.1.1")); /* host bits are cleared */
    assert_true(cidr_has("192.168.1.0/25", "192.168.1.127"));
    assert_false(cidr_has("192.168.1.0/25", "192.168.1.128"));
    assert_true(cidr_has("0.0.0.0/0", "169.254.169.254"));
    assert_true(cidr_has("127.0.0.1/32", "::ffff:127.0.0.1")); /* mapped matches IPv4 */
    assert_false(cidr_has("127.0.0.1/32", "::1"));
    assert_true(cidr_has("fd00::/8", "fd12::1"));
    assert_false(cidr_has("fd00::/8", "fc00::1"));
    assert_true(cidr_has("::1/128", "::1"));
    assert_true(cidr_has("fe80::/10", "febf::1"));
    assert_false(cidr_has("fe80::/10", "fec0::1"));
    assert_false(cidr_has("::/0", "10.0.0.1")); /* families do not mix */

    static const char *const bad[] = {"",           "10.0.0.0/33",  "::/129",      "10.0.0.0/",
                                      "10.0.0/8",   "10.0.0.0/8/8", "example.com", "10.0.0.0/-1",
                                      "1.2.3.4 /8", "10.0.0.0/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        we_ip_cidr c;
        if (we_ip_cidr_parse(bad[i], strlen(bad[i]), &c) == 0)
            fail_msg("\"%s\" should not parse", bad[i]);
    }

    we_ip_cidr list[4];
    size_t n = 99;
    char err[128] = "";
    assert_int_equal(
        we_ip_cidrs_parse(" 10.0.0.0/8,fd00::/8 ,, 127.0.0.1\t", list, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(we_ip_cidrs_parse(NULL, list, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(we_ip_cidrs_parse("", list, 4, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(we_ip_cidrs_parse("10.0.0.0/8, bogus", list, 4, &n, err, sizeof err), -1);
    assert_non_null(strstr(err, "\"bogus\""));
    assert_int_equal(
        we_ip_cidrs_parse("1.1.1.1 2.2.2.2 3.3.3.3 4.4.4.4 5.5.5.5", list, 4, &n, err, sizeof err),
        -1);
    assert_non_null(strstr(err, "more than 4"));
}

static bool allowed(const enc_egress_policy *p, const char *addr)
{
    struct sockaddr_storage ss;
    sa_of(addr, &ss);
    return enc_egress_allowed(p, (struct sockaddr *)&ss);
}

static void test_policy(void **state)
{
    (void)state;
    enc_egress_policy p;
    char err[128];
    assert_int_equal(enc_egress_policy_parse(false, "", &p, err, sizeof err), 0);
    assert_true(allowed(&p, "93.184.216.34"));
    assert_true(allowed(&p, "2606:4700::1111"));
    assert_false(allowed(&p, "127.0.0.1"));
    assert_false(allowed(&p, "169.254.169.254"));
    assert_false(allowed(&p, "::ffff:169.254.169.254"));
    assert_false(allowed(&p, "fe80::1"));
    assert_int_equal(
        enc_egress_policy_parse(false, "127.0.0.1/32,10.1.0.0/16", &p, err, sizeof err), 0);
    assert_true(allowed(&p, "127.0.0.1"));
    assert_true(allowed(&p, "::ffff:127.0.0.1"));
    assert_false(allowed(&p, "127.0.0.2"));
    assert_true(allowed(&p, "10.1.200.3"));
    assert_false(allowed(&p, "10.2.0.1"));
    assert_false(allowed(&p, "169.254.169.254"));
    assert_true(allowed(&p, "8.8.8.8"));
    assert_int_equal(enc_egress_policy_parse(true, "", &p, err, sizeof err), 0);
    assert_true(allowed(&p, "169.254.169.254"));
    assert_true(allowed(&p, "::1"));
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_false(enc_egress_allowed(&p, &un));
    assert_int_equal(enc_egress_policy_parse(false, "10.0.0.0/40", &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "10.0.0.0/40"));
}

/* The kernel's submission check with SOURCE_ALLOW_CIDRS. */
static void test_kernel_allow_cidrs(void **state)
{
    (void)state;
    we_err err;
    assert_int_not_equal(we_net_host_public_except("127.0.0.1", NULL, NULL, "X", &err), 0);
    assert_int_equal(we_net_host_public_except("127.0.0.1", "127.0.0.1/32", "CIDRS", "X", &err), 0);
    assert_int_not_equal(we_net_host_public_except("127.0.0.2", "127.0.0.1/32", "CIDRS", "X", &err),
                         0);
    assert_non_null(strstr(err.msg, "CIDRS"));
    assert_non_null(strstr(err.msg, "127.0.0.2"));
    assert_int_not_equal(we_net_host_public_except("127.0.0.1", "127.0.0.1/99", "CIDRS", "X", &err),
                         0);
    assert_non_null(strstr(err.msg, "CIDRS"));
    assert_int_equal(we_net_host_public_except("93.184.216.34", "", "CIDRS", "X", &err), 0);

    char *canon = NULL;
    unsetenv("SOURCE_ALLOW_PRIVATE");
    unsetenv("SOURCE_ALLOW_CIDRS");
    assert_int_not_equal(kn_job_source_check(NULL, "http://127.0.0.1:8/v.mp4", &canon, &err), 0);
    setenv("SOURCE_ALLOW_CIDRS", "10.0.0.0/8, 127.0.0.1/32", 1);
    assert_int_equal(kn_job_source_check(NULL, "http://127.0.0.1:8/v.mp4", &canon, &err), 0);
    free(canon);
    canon = NULL;
    assert_int_not_equal(kn_job_source_check(NULL, "https://127.0.0.2/v.mp4", &canon, &err), 0);
    assert_non_null(strstr(err.msg, "SOURCE_ALLOW_CIDRS"));
    setenv("SOURCE_ALLOW_CIDRS", "not-a-cidr", 1);
    assert_int_not_equal(kn_job_source_check(NULL, "http://127.0.0.1:8/v.mp4", &canon, &err), 0);
    assert_non_null(strstr(err.msg, "SOURCE_ALLOW_CIDRS"));
    unsetenv("SOURCE_ALLOW_CIDRS");
    assert_null(canon);
}

/* ---- parsing --------------------------------------------------------------------- */

static int parse(const char *text, enc_egress_req *r, char *err, size_t n)
{
    return enc_egress_parse(text, strlen(text), r, err, n);
}

static void test_parse_ok(void **state)
{
    (void)state;
    enc_egress_req r;
    char err[128];
    const char *c = "CONNECT media.example:443 HTTP/1.1\r\nHost: media.example:443\r\n\r\nTLS";
    assert_int_equal(parse(c, &r, err, sizeof err), 1);
    assert_true(r.connect);
    assert_string_equal(r.host, "media.example");
    assert_int_equal(r.port, 443);
    assert_int_equal(r.head_len, strlen(c) - 3);

    assert_int_equal(parse("CONNECT [::1]:8443 HTTP/1.0\r\n\r\n", &r, err, sizeof err), 1);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 8443);
    assert_int_equal(r.minor, 0);

    const char *g = "GET http://Media.Example/a/b.mp4?x=1#frag HTTP/1.1\r\nRange: bytes=0-\r\n"
                    "Content-Length: 0\r\n\r\n";
    assert_int_equal(parse(g, &r, err, sizeof err), 1);
    assert_false(r.connect);
    assert_string_equal(r.method, "GET");
    assert_string_equal(r.host, "Media.Example");
    assert_int_equal(r.port, 80);
    assert_int_equal((int)r.path_len, (int)strlen("/a/b.mp4?x=1"));
    assert_memory_equal(g + r.path_off, "/a/b.mp4?x=1", r.path_len);

    assert_int_equal(parse("HEAD HTTP://h:8080 HTTP/1.1\n\n", &r, err, sizeof err), 1);
    assert_int_equal(r.port, 8080);
    assert_int_equal((int)r.path_len, 0);
    assert_int_equal(parse("GET http://[2001:db8::1]:81?q HTTP/1.1\r\n\r\n", &r, err, sizeof err),
                     1);
    assert_string_equal(r.host, "2001:db8::1");
    assert_int_equal(r.port, 81);

    /* incomplete: more bytes needed */
    assert_int_equal(parse("GET http://h/ HTTP/1.1\r\nHost: h\r\n", &r, err, sizeof err), 0);
    assert_int_equal(parse("", &r, err, sizeof err), 0);
}

static void test_parse_refused(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET /relative HTTP/1.1\r\n\r\n", -400},
        {"GET ftp://h/x HTTP/1.1\r\n\r\n", -400},
        {"GET https://h/x HTTP/1.1\r\n\r\n", -400}, /* https goes through CONNECT */
        {"GET gopher://h:70/x HTTP/1.1\r\n\r\n", -400},
        {"POST http://h/x HTTP/1.1\r\n\r\n", -405},
        {"DELETE http://h/x HTTP/1.1\r\n\r\n", -405},
        {"get http://h/x HTTP/1.1\r\n\r\n", -400},
        {"GET http://h/x HTTP/2.0\r\n\r\n", -400},
        {"GET http://h/x\r\n\r\n", -400},
        {"GET  http://h/x HTTP/1.1\r\n\r\n", -400},
        {"GET http://h/x HTTP/1.1 \r\n\r\n", -400},
        {"GET http://h/x y HTTP/1.1\r\n\r\n", -400},
        {"GET http://h:0/x HTTP/1.1\r\n\r\n", -400},
        {"GET http://h:65536/x HTTP/1.1\r\n\r\n", -400},
        {"GET http://h:8x/x HTTP/1.1\r\n\r\n", -400},
        {"GET http:///x HTTP/1.1\r\n\r\n", -400},
        {"GET http://h%2f/x HTTP/1.1\r\n\r\n", -400},
        {"GET http://[::1/x HTTP/1.1\r\n\r\n", -400},
        {"GET http://[fe80::1%eth0]/x HTTP/1.1\r\n\r\n", -400},
        {"CONNECT h HTTP/1.1\r\n\r\n", -400},
        {"CONNECT h:0 HTTP/1.1\r\n\r\n", -400},
        {"CONNECT :443 HTTP/1.1\r\n\r\n", -400},
        {"CONNECT user@h:443 HTTP/1.1\r\n\r\n", -400},
        {"GET http://h/x HTTP/1.1\r\nNoColon\r\n\r\n", -400},
        {"GET http://h/x HTTP/1.1\r\n folded: x\r\n\r\n", -400},
        {"GET http://h/x HTTP/1.1\r\nBad Name: x\r\n\r\n", -400},
        {"GET http://h/x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", -400},
        {"GET http://h/x HTTP/1.1\r\nContent-Length: 0x\r\n\r\n", -400},
        {"GET http://h/x HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n", -400},
        {"\r\n\r\n", -400},
    };
    enc_egress_req r;
    char err[128];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = parse(cases[i].req, &r, err, sizeof err);
        if (rc != cases[i].status)
            fail_msg("case %zu \"%s\": expected %d, got %d", i, cases[i].req, cases[i].status, rc);
    }
    /* credentials: refused, and never repeated in the reason */
    assert_int_equal(parse("GET http://alice:s3cr3t@h/x HTTP/1.1\r\n\r\n", &r, err, sizeof err),
                     -400);
    assert_null(strstr(err, "s3cr3t"));
    assert_null(strstr(err, "alice"));
    /* a NUL byte anywhere in the header */
    const char nul[] = "GET http://h/x HTTP/1.1\r\nA: b\0c\r\n\r\n";
    assert_int_equal(enc_egress_parse(nul, sizeof nul - 1, &r, err, sizeof err), -400);
    /* too large: no blank line within ENC_EGRESS_MAX_HEAD bytes */
    char *big = malloc(ENC_EGRESS_MAX_HEAD + 10);
    assert_non_null(big);
    memset(big, 'a', ENC_EGRESS_MAX_HEAD + 10);
    memcpy(big, "GET http://h/x HTTP/1.1\r\nX: ", 28);
    assert_int_equal(enc_egress_parse(big, ENC_EGRESS_MAX_HEAD - 1, &r, err, sizeof err), 0);
    assert_int_equal(enc_egress_parse(big, ENC_EGRESS_MAX_HEAD, &r, err, sizeof err), -431);
    assert_int_equal(enc_egress_parse(big, ENC_EGRESS_MAX_HEAD + 10, &r, err, sizeof err), -431);
    /* the blank line just past the limit does not count */
    memcpy(big + ENC_EGRESS_MAX_HEAD - 2, "\r\n\r\n", 4);
    assert_int_equal(enc_egress_parse(big, ENC_EGRESS_MAX_HEAD + 2, &r, err, sizeof err), -431);
    free(big);
}

static void test_rewrite(void **state)
{
    (void)state;
    enc_egress_req r;
    char err[128], out[512];
    const char *g = "GET http://h:8080/v.mp4?t=1 HTTP/1.1\r\nUser-Agent: Lavf\r\n"
                    "Proxy-Authorization: Basic eDp5\r\nHost: h:8080\r\nproxy-connection: x\r\n"
                    "Range: bytes=0-\r\n\r\n";
    assert_int_equal(parse(g, &r, err, sizeof err), 1);
    size_t n = enc_egress_rewrite(g, &r, out, sizeof out);
    assert_true(n > 0);
    out[n] = '\0';
    assert_string_equal(out, "GET /v.mp4?t=1 HTTP/1.1\r\nUser-Agent: Lavf\r\nHost: h:8080\r\n"
                             "Range: bytes=0-\r\n\r\n");
    const char *q = "HEAD http://h?x=1 HTTP/1.0\n\n";
    assert_int_equal(parse(q, &r, err, sizeof err), 1);
    n = enc_egress_rewrite(q, &r, out, sizeof out);
    out[n] = '\0';
    assert_string_equal(out, "HEAD /?x=1 HTTP/1.0\r\n\r\n");
    const char *e = "GET http://h HTTP/1.1\r\n\r\n";
    assert_int_equal(parse(e, &r, err, sizeof err), 1);
    n = enc_egress_rewrite(e, &r, out, sizeof out);
    out[n] = '\0';
    assert_string_equal(out, "GET / HTTP/1.1\r\n\r\n");
    assert_int_equal(enc_egress_rewrite(g, &r, out, 10), 0); /* does not fit */
}

/* ---- a live proxy ------------------------------------------------------------------ */

/* A one-connection origin server on addr: records what it receives; in
 * "echo" mode it sends every chunk back, in "http" mode it answers the
 * first header block with a fixed response. */
typedef struct origin {
    int lfd, port;
    bool http;
    pthread_t th;
    char got[8192];
    size_t len;
    bool accepted;
} origin;

static const char http_answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

static void *origin_main(void *arg)
{
    origin *o = arg;
    struct pollfd p = {.fd = o->lfd, .events = POLLIN};
    if (poll(&p, 1, 5000) <= 0)
        return NULL;
    int fd = accept(o->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    o->accepted = true;
    bool answered = false;
    for (;;) {
        struct pollfd q = {.fd = fd, .events = POLLIN};
        if (poll(&q, 1, 5000) <= 0)
            break;
        ssize_t n = recv(fd, o->got + o->len, sizeof o->got - 1 - o->len, 0);
        if (n <= 0)
            break;
        if (!o->http)
            send(fd, o->got + o->len, (size_t)n, MSG_NOSIGNAL);
        o->len += (size_t)n;
        if (o->http && !answered && strstr(o->got, "\r\n\r\n")) {
            send(fd, http_answer, sizeof http_answer - 1, MSG_NOSIGNAL);
            answered = true;
        }
    }
    close(fd);
    return NULL;
}

static void origin_start(origin *o, const char *addr, bool http)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    memset(o, 0, sizeof *o);
    o->http = http;
    inet_pton(AF_INET, addr, &sa.sin_addr);
    o->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(o->lfd >= 0);
    assert_int_equal(bind(o->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(o->lfd, 8), 0);
    assert_int_equal(getsockname(o->lfd, (struct sockaddr *)&sa, &sl), 0);
    o->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&o->th, NULL, origin_main, o), 0);
}

static void origin_join(origin *o)
{
    pthread_join(o->th, NULL);
    close(o->lfd);
    o->got[o->len] = '\0';
}

/* A client connected to the proxy. */
static int dial(enc_egress *e)
{
    int port = atoi(strrchr(enc_egress_url(e), ':') + 1);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void say_all(int fd, const char *s)
{
    assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* Reads until n bytes, EOF or 5 s; NUL-terminated. */
static size_t hear(int fd, char *buf, size_t cap, size_t n)
{
    size_t len = 0;
    while (len < n && len < cap - 1) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 5000) <= 0)
            break;
        ssize_t r = recv(fd, buf + len, cap - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    return len;
}

typedef struct logged {
    pthread_mutex_t mu;
    char last[256];
    int count;
} logged;

static void record_log(void *ud, const char *level, const char *msg, const char *host, int port,
                       const char *addr)
{
    logged *l = ud;
    pthread_mutex_lock(&l->mu);
    snprintf(l->last, sizeof l->last, "%s %s %s:%d %s", level, msg, host, port, addr);
    l->count++;
    pthread_mutex_unlock(&l->mu);
}

static enc_egress *proxy(const char *cidrs, logged *l)
{
    enc_egress_policy p;
    enc_egress *e = NULL;
    char err[128];
    assert_int_equal(enc_egress_policy_parse(false, cidrs, &p, err, sizeof err), 0);
    assert_int_equal(enc_egress_start(&p, record_log, l, &e), 0);
    assert_non_null(e);
    assert_int_equal(strncmp(enc_egress_url(e), "http://127.0.0.1:", 17), 0);
    return e;
}

static void test_proxy_connect(void **state)
{
    (void)state;
    logged l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    enc_egress *e = proxy("127.0.0.1/32", &l);
    origin o;
    char buf[512], req[128], why[400];
    origin_start(&o, "127.0.0.1", false);
    int fd = dial(e);
    snprintf(req, sizeof req, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\nhello", o.port);
    say_all(fd, req); /* "hello" sent ahead of the answer belongs to the tunnel */
    const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
    hear(fd, buf, sizeof buf, strlen(ok) + 5);
    assert_string_equal(buf, "HTTP/1.1 200 Connection established\r\n\r\nhello");
    say_all(fd, "ping");
    hear(fd, buf, sizeof buf, 4);
    assert_string_equal(buf, "ping");
    close(fd);
    origin_join(&o);
    assert_string_equal(o.got, "helloping");
    /* allowed but nobody listens: 502 (the listener is gone) */
    fd = dial(e);
    snprintf(req, sizeof req, "CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n", o.port);
    say_all(fd, req);
    hear(fd, buf, sizeof buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 502 ", 13), 0);
    close(fd);
    assert_false(enc_egress_refusal(e, why, sizeof why));
    enc_egress_stop(e);
}

/* A listener on 127.0.0.2 that must not see a connection. */
static void test_proxy_connect_refused(void **state)
{
    (void)state;
    logged l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    enc_egress *e = proxy("127.0.0.1/32", &l);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t sl = sizeof sa;
    char buf[512], req[128], why[400];
    inet_pton(AF_INET, "127.0.0.2", &sa.sin_addr);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 8), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);

    int fd = dial(e);
    snprintf(req, sizeof req, "CONNECT 127.0.0.2:%d HTTP/1.1\r\n\r\n", ntohs(sa.sin_port));
    say_all(fd, req);
    hear(fd, buf, sizeof buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 403 ", 13), 0);
    close(fd);
    fd = dial(e); /* absolute-form to the same place */
    snprintf(req, sizeof req, "GET http://127.0.0.2:%d/latest/meta-data/ HTTP/1.1\r\n\r\n",
             ntohs(sa.sin_port));
    say_all(fd, req);
    hear(fd, buf, sizeof buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 403 ", 13), 0);
    close(fd);

    assert_true(enc_egress_refusal(e, why, sizeof why));
    assert_non_null(strstr(why, "127.0.0.2"));
    pthread_mutex_lock(&l.mu);
    assert_non_null(strstr(l.last, "egress refused"));
    assert_null(strstr(l.last, "meta-data")); /* never the path */
    pthread_mutex_unlock(&l.mu);
    assert_int_equal(accept(lfd, NULL, NULL), -1); /* nothing connected to 127.0.0.2 */
    assert_int_equal(errno, EAGAIN);
    close(lfd);
    enc_egress_stop(e);
}

static void test_proxy_absolute_form(void **state)
{
    (void)state;
    logged l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    enc_egress *e = proxy("127.0.0.1/32", &l);
    origin o;
    char buf[1024], req[512];
    origin_start(&o, "127.0.0.1", true);
    int fd = dial(e);
    snprintf(req, sizeof req,
             "GET http://127.0.0.1:%d/v.mp4?a=b HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Proxy-Authorization: Basic eDp5\r\n\r\n",
             o.port, o.port);
    say_all(fd, req);
    hear(fd, buf, sizeof buf, strlen(http_answer));
    assert_string_equal(buf, http_answer);
    /* keep-alive: a second request on the connection for another host is cut */
    say_all(fd, "GET http://169.254.169.254/ HTTP/1.1\r\n\r\n");
    assert_int_equal(hear(fd, buf, sizeof buf, sizeof buf), 0);
    close(fd);
    origin_join(&o);
    char want[256];
    snprintf(want, sizeof want, "GET /v.mp4?a=b HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", o.port);
    assert_string_equal(o.got, want);
    enc_egress_stop(e);
}

static void test_proxy_bad_requests(void **state)
{
    (void)state;
    logged l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    enc_egress *e = proxy("", &l);
    char buf[512];
    static const struct {
        const char *req;
        const char *status;
    } cases[] = {
        {"HELLO\r\n\r\n", "HTTP/1.1 400 "},
        {"GET /etc/passwd HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "},
        {"POST http://93.184.216.34/ HTTP/1.1\r\n\r\n", "HTTP/1.1 405 "},
        {"GET http://u:p@93.184.216.34/ HTTP/1.1\r\n\r\n", "HTTP/1.1 400 "},
        {"CONNECT 169.254.169.254:80 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 "},
        {"CONNECT [::ffff:127.0.0.1]:80 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 "},
        {"CONNECT 2130706433:80 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 "}, /* 127.0.0.1 as a number */
        {"CONNECT localhost:443 HTTP/1.1\r\n\r\n", "HTTP/1.1 403 "}, /* a name for loopback */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int fd = dial(e);
        say_all(fd, cases[i].req);
        hear(fd, buf, sizeof buf, sizeof buf);
        if (strncmp(buf, cases[i].status, strlen(cases[i].status)) != 0)
            fail_msg("\"%s\": expected %s, got \"%s\"", cases[i].req, cases[i].status, buf);
        close(fd);
    }
    /* oversized header: 431 */
    int fd = dial(e);
    char *big = malloc(ENC_EGRESS_MAX_HEAD + 100);
    assert_non_null(big);
    memset(big, 'a', ENC_EGRESS_MAX_HEAD + 99);
    memcpy(big, "GET http://h/ HTTP/1.1\r\nX: ", 27);
    big[ENC_EGRESS_MAX_HEAD + 99] = '\0';
    say_all(fd, big);
    hear(fd, buf, sizeof buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 431 ", 13), 0);
    close(fd);
    free(big);
    enc_egress_stop(e);
}

/* ENC_EGRESS_MAX_CONN silent clients fill the proxy; one more gets 503;
 * stop cuts them all without waiting for their header timeout. */
static void test_proxy_cap_and_stop(void **state)
{
    (void)state;
    logged l = {.mu = PTHREAD_MUTEX_INITIALIZER};
    enc_egress *e = proxy("", &l);
    int fds[ENC_EGRESS_MAX_CONN];
    char buf[256];
    for (int i = 0; i < ENC_EGRESS_MAX_CONN; i++)
        fds[i] = dial(e);
    /* each holds a slot once accepted: wait until the proxy took them all */
    for (int tries = 0; tries < 500; tries++) {
        int live = 0;
        pthread_mutex_lock(&e->mu);
        for (int i = 0; i < ENC_EGRESS_MAX_CONN; i++)
            live += e->slots[i].live;
        pthread_mutex_unlock(&e->mu);
        if (live == ENC_EGRESS_MAX_CONN)
            break;
        poll(NULL, 0, 10);
    }
    int extra = dial(e);
    hear(extra, buf, sizeof buf, sizeof buf);
    assert_int_equal(strncmp(buf, "HTTP/1.1 503 ", 13), 0);
    close(extra);
    int64_t t0 = now_ms();
    enc_egress_stop(e);
    assert_true(now_ms() - t0 < HEAD_MS); /* not waiting for the clients */
    for (int i = 0; i < ENC_EGRESS_MAX_CONN; i++) {
        assert_int_equal(hear(fds[i], buf, sizeof buf, sizeof buf), 0); /* EOF */
        close(fds[i]);
    }
    enc_egress_stop(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification),
        cmocka_unit_test(test_cidr),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_kernel_allow_cidrs),
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_refused),
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_proxy_connect),
        cmocka_unit_test(test_proxy_connect_refused),
        cmocka_unit_test(test_proxy_absolute_form),
        cmocka_unit_test(test_proxy_bad_requests),
        cmocka_unit_test(test_proxy_cap_and_stop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
