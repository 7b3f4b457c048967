/*
 * The egress proxy: every network connection FFmpeg makes for a job's
 * input goes through here, and here the address actually connected to is
 * checked against the SSRF policy (DESIGN §8).
 *
 * Why a proxy: the kernel vets an http(s) source's host at submission, but
 * libavformat resolves the name again later (DNS rebinding) and follows up
 * to 8 HTTP redirects on its own, with no option to stop it — so
 * http://public/x answering "302 Location: http://169.254.169.254/…" would
 * make the worker fetch cloud metadata. libavformat can be pointed at an
 * HTTP proxy for every request, redirects included (option http_proxy; the
 * plugin also sets the http_proxy environment variable for opens that do
 * not pass options on): plain http is sent in absolute-form
 * ("GET http://host:port/path HTTP/1.1"), https is tunnelled with
 * "CONNECT host:443" (the tls protocol over httpproxy), so TLS still ends
 * in FFmpeg and the certificate is still the origin's.
 *
 * Design: a proxy listens on 127.0.0.1:<ephemeral>. Each accepted
 * connection gets a thread (at most ENC_EGRESS_MAX_CONN at once; beyond:
 * 503) that
 *   1. reads one header block (at most ENC_EGRESS_MAX_HEAD bytes, within
 *      HEAD_MS) and accepts only "CONNECT host:port" or a GET/HEAD with an
 *      http:// absolute-form URL without credentials (400/405/431 else);
 *   2. resolves the host once and refuses (403) when ANY address is
 *      internal (webencode/netaddr.h) and not allowed by the policy — a
 *      name with one public and one private address is refused;
 *   3. connects to a vetted address itself (no second resolution), within
 *      CONNECT_MS (502 when it cannot);
 *   4. CONNECT: answers 200 and relays bytes both ways. Absolute-form:
 *      sends the request in origin-form with the client's headers (minus
 *      Proxy-*), then relays the answer; a further request on the same
 *      connection (keep-alive) is parsed and rewritten the same way and
 *      must name the same host and port, otherwise the connection is cut.
 *      Requests carry no body (GET/HEAD; Content-Length or
 *      Transfer-Encoding is refused).
 * A relay ends when both directions reached EOF, on an error, after
 * IDLE_MS without a byte, or when the proxy stops. Refusals are logged
 * with host, port and address — never the path (it may carry tokens) or
 * credentials — and the first one is kept so the call that owns the proxy
 * can say why its input failed.
 *
 * Threads: the acceptor thread owns the listener and starts connection
 * threads in fixed slots; slot fds and the policy are shared under mu, so
 * enc_egress_stop (any thread) can shut every socket down and join
 * everything. Sockets are close-on-exec: ffmpeg children inherit nothing.
 */
#include "egress.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEAD_MS 15000
#define CONNECT_MS 10000
#define IDLE_MS 120000
#define RELAY_BUF 16384

/* ---- policy ---------------------------------------------------------------------- */

int enc_egress_policy_parse(bool allow_private, const char *cidrs, enc_egress_policy *p, char *err,
                            size_t n)
{
    memset(p, 0, sizeof *p);
    p->allow_private = allow_private;
    return we_ip_cidrs_parse(cidrs, p->cidrs, ENC_EGRESS_MAX_CIDRS, &p->ncidrs, err, n);
}

bool enc_egress_allowed(const enc_egress_policy *p, const struct sockaddr *sa)
{
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return false;
    return p->allow_private || !we_ip_private(sa) || we_ip_cidrs_match(p->cidrs, p->ncidrs, sa);
}

/* ---- parsing one header block ------------------------------------------------------- */

static int refuse(int status, char *err, size_t n, const char *why)
{
    snprintf(err, n, "%s", why);
    return -status;
}

/* The end of the header block (just past the blank line), or NULL. */
static const char *head_end(const char *buf, size_t len)
{
    for (const char *p = buf, *end = buf + len; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return NULL;
        if (nl == p || (nl == p + 1 && p[0] == '\r'))
            return nl + 1;
        p = nl + 1;
    }
    return NULL;
}

/* [p, e) without a trailing CR. */
static size_t line_len(const char *p, const char *e)
{
    return (size_t)(e - p) - (e > p && e[-1] == '\r');
}

static bool is_token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

/* "1".."65535" in s[0..n) into *port. */
static bool parse_port(const char *s, size_t n, int *port)
{
    if (n < 1 || n > 5)
        return false;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *port = (int)v;
    return v >= 1 && v <= 65535;
}

/* host[:port] or [v6][:port] in a[0..n) into r; default_port 0: required. */
static bool parse_authority(const char *a, size_t n, int default_port, enc_egress_req *r)
{
    const char *h = a, *hend, *rest;
    const char *hchars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
    if (n > 0 && a[0] == '[') {
        h = a + 1;
        hend = memchr(h, ']', n - 1);
        if (!hend)
            return false;
        rest = hend + 1;
        hchars = "0123456789abcdefABCDEF:.";
    } else {
        hend = memchr(a, ':', n);
        hend = hend ? hend : a + n;
        rest = hend;
    }
    size_t hn = (size_t)(hend - h), left = n - (size_t)(rest - a);
    if (hn == 0 || hn > 253)
        return false;
    for (size_t i = 0; i < hn; i++)
        if (!h[i] || !strchr(hchars, h[i]))
            return false;
    memcpy(r->host, h, hn);
    r->host[hn] = '\0';
    if (left == 0) {
        r->port = default_port;
        return default_port > 0;
    }
    return rest[0] == ':' && parse_port(rest + 1, left - 1, &r->port);
}

/* "http://authority[/path][?query][#frag]" in t[0..n): authority into r,
 * path and query as an offset from base. */
static int parse_absolute(const char *base, const char *t, size_t n, enc_egress_req *r, char *err,
                          size_t errn)
{
    if (n < 7 || strncasecmp(t, "http://", 7) != 0)
        return refuse(400, err, errn,
                      "only CONNECT and http:// absolute-form requests are proxied");
    const char *a = t + 7, *end = t + n;
    size_t an = strcspn(a, "/?# ");
    if (an > (size_t)(end - a))
        an = (size_t)(end - a);
    if (memchr(a, '@', an))
        return refuse(400, err, errn, "credentials in the URL are refused");
    if (!parse_authority(a, an, 80, r))
        return refuse(400, err, errn, "bad host or port in the URL");
    const char *path = a + an, *hash = memchr(path, '#', (size_t)(end - path));
    r->path_off = (size_t)(path - base);
    r->path_len = (size_t)((hash ? hash : end) - path);
    return 1;
}

/* "METHOD SP target SP HTTP/1.x" in line[0..n). */
static int parse_request_line(const char *base, const char *line, size_t n, enc_egress_req *r,
                              char *err, size_t errn)
{
    const char *sp1 = memchr(line, ' ', n);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - line)) : NULL;
    size_t mn = sp1 ? (size_t)(sp1 - line) : 0;
    if (!sp2 || mn == 0 || mn >= sizeof r->method ||
        strspn(line, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != mn)
        return refuse(400, err, errn, "malformed request line");
    const char *ver = sp2 + 1, *t = sp1 + 1;
    size_t vn = n - (size_t)(ver - line), tn = (size_t)(sp2 - t);
    if (vn != 8 || strncmp(ver, "HTTP/1.", 7) != 0 || (ver[7] != '0' && ver[7] != '1'))
        return refuse(400, err, errn, "not HTTP/1.0 or HTTP/1.1");
    for (size_t i = 0; i < tn; i++)
        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] >= 0x7f)
            return refuse(400, err, errn, "malformed request target");
    memcpy(r->method, line, mn);
    r->method[mn] = '\0';
    r->minor = ver[7] - '0';
    r->connect = strcmp(r->method, "CONNECT") == 0;
    if (r->connect)
        return parse_authority(t, tn, 0, r) ? 1 : refuse(400, err, errn, "CONNECT needs host:port");
    if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0)
        return refuse(405, err, errn, "only GET, HEAD and CONNECT are proxied");
    return parse_absolute(base, t, tn, r, err, errn);
}

/* One "Name: value" line; requests with a body are refused. */
static int check_header(const char *line, size_t n, const enc_egress_req *r, char *err, size_t errn)
{
    const char *colon = memchr(line, ':', n);
    size_t nn = colon ? (size_t)(colon - line) : 0;
    if (nn == 0)
        return refuse(400, err, errn, "malformed header line");
    for (size_t i = 0; i < nn; i++)
        if (!is_token_char((unsigned char)line[i]))
            return refuse(400, err, errn, "malformed header name");
    if (r->connect)
        return 1;
    if (nn == 17 && strncasecmp(line, "Transfer-Encoding", nn) == 0)
        return refuse(400, err, errn, "request bodies are refused");
    if (nn == 14 && strncasecmp(line, "Content-Length", nn) == 0) {
        const char *v = colon + 1, *e = line + n;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e == v || strspn(v, "0") < (size_t)(e - v)) /* "0" only */
            return refuse(400, err, errn, "request bodies are refused");
    }
    return 1;
}

int enc_egress_parse(const char *buf, size_t len, enc_egress_req *r, char *err, size_t n)
{
    const char *end = head_end(buf, len < ENC_EGRESS_MAX_HEAD ? len : ENC_EGRESS_MAX_HEAD);
    if (!end)
        return len >= ENC_EGRESS_MAX_HEAD ? refuse(431, err, n, "request header too large") : 0;
    if (memchr(buf, '\0', (size_t)(end - buf)))
        return refuse(400, err, n, "NUL byte in the request header");
    memset(r, 0, sizeof *r);
    r->head_len = (size_t)(end - buf);
    const char *nl = memchr(buf, '\n', r->head_len);
    int rc = parse_request_line(buf, buf, line_len(buf, nl), r, err, n);
    for (const char *p = nl + 1; rc == 1 && p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t ln = line_len(p, e);
        if (ln == 0)
            break;
        rc = check_header(p, ln, r, err, n);
        p = e + 1;
    }
    return rc;
}

static bool append(char *out, size_t cap, size_t *at, const char *s, size_t n)
{
    if (n > cap - *at)
        return false;
    memcpy(out + *at, s, n);
    *at += n;
    return true;
}

size_t enc_egress_rewrite(const char *buf, const enc_egress_req *r, char *out, size_t cap)
{
    const char *path = buf + r->path_off, *end = buf + r->head_len;
    char ver[16];
    size_t at = 0;
    snprintf(ver, sizeof ver, " HTTP/1.%d\r\n", r->minor);
    bool ok = append(out, cap, &at, r->method, strlen(r->method)) &&
              append(out, cap, &at, " ", 1) &&
              (r->path_len > 0 && path[0] == '/' ? true : append(out, cap, &at, "/", 1)) &&
              append(out, cap, &at, path, r->path_len) && append(out, cap, &at, ver, strlen(ver));
    const char *p = memchr(buf, '\n', r->head_len) + 1;
    while (ok && p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t ln = line_len(p, e);
        if (ln == 0)
            break;
        if (ln < 6 || strncasecmp(p, "Proxy-", 6) != 0)
            ok = append(out, cap, &at, p, ln) && append(out, cap, &at, "\r\n", 2);
        p = e + 1;
    }
    ok = ok && append(out, cap, &at, "\r\n", 2);
    return ok ? at : 0;
}

/* ---- the proxy -------------------------------------------------------------------------- */

typedef struct slot {
    pthread_t th;
    bool started; /* th must be joined */
    bool live;    /* the thread has not finished */
    int cfd, ufd; /* client and upstream sockets, -1 when closed */
} slot;

struct enc_egress {
    pthread_mutex_t mu;
    enc_egress_policy policy; /* under mu */
    enc_egress_log_fn log;
    void *ud;
    int lfd, stop_r, stop_w;
    pthread_t acceptor;
    char url[48];
    char refusal[384]; /* the first refusal, under mu */
    slot slots[ENC_EGRESS_MAX_CONN];
};

typedef struct conn {
    enc_egress *e;
    slot *s;
    char *buf; /* ENC_EGRESS_MAX_HEAD bytes: the client's unparsed request bytes */
    size_t len;
    enc_egress_req req;
} conn;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void say(enc_egress *e, const char *level, const char *msg, const enc_egress_req *r,
                const char *addr)
{
    if (e->log)
        e->log(e->ud, level, msg, r->host, r->port, addr);
}

static bool send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

static void answer(int fd, int status)
{
    static const struct {
        int status;
        const char *text;
    } reasons[] = {{200, "Connection established"},
                   {400, "Bad Request"},
                   {403, "Forbidden"},
                   {405, "Method Not Allowed"},
                   {431, "Request Header Fields Too Large"},
                   {502, "Bad Gateway"},
                   {503, "Service Unavailable"}};
    const char *text = "Error";
    for (size_t i = 0; i < sizeof reasons / sizeof *reasons; i++)
        if (reasons[i].status == status)
            text = reasons[i].text;
    char head[160];
    int n = status == 200 ? snprintf(head, sizeof head, "HTTP/1.1 200 %s\r\n\r\n", text)
                          : snprintf(head, sizeof head,
                                     "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n"
                                     "Connection: close\r\nX-WebEncode-Egress: refused\r\n\r\n",
                                     status, text);
    send_all(fd, head, (size_t)n);
}

/* Waits until fd is ready for events, the proxy stops, or ms pass; 1
 * ready, 0 timeout, -1 stopping or error. */
static int wait_fd(enc_egress *e, int fd, short events, int ms)
{
    struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = e->stop_r, .events = POLLIN}};
    int n;
    while ((n = poll(p, 2, ms)) < 0 && errno == EINTR)
        ;
    if (n < 0 || p[1].revents)
        return -1;
    return n > 0;
}

/* Reads until one header block is complete: 1 with c->req, 0 when the
 * client went away or timed out, else -status (already answered). */
static int read_head(conn *c)
{
    char why[128];
    int64_t deadline = now_ms() + HEAD_MS;
    for (;;) {
        int rc = enc_egress_parse(c->buf, c->len, &c->req, why, sizeof why);
        if (rc != 0) {
            if (rc < 0)
                answer(c->s->cfd, -rc);
            return rc;
        }
        int64_t left = deadline - now_ms();
        if (left <= 0 || wait_fd(c->e, c->s->cfd, POLLIN, (int)left) <= 0)
            return 0;
        ssize_t r = recv(c->s->cfd, c->buf + c->len, ENC_EGRESS_MAX_HEAD - c->len, 0);
        if (r <= 0 && !(r < 0 && errno == EINTR))
            return 0;
        c->len += r > 0 ? (size_t)r : 0;
    }
}

static void addr_text(const struct sockaddr *sa, socklen_t n, char *buf, size_t cap)
{
    if (getnameinfo(sa, n, buf, (socklen_t)cap, NULL, 0, NI_NUMERICHOST) != 0)
        snprintf(buf, cap, "?");
}

static void record_refusal(enc_egress *e, const enc_egress_req *r, const char *addr)
{
    pthread_mutex_lock(&e->mu);
    if (!e->refusal[0])
        snprintf(e->refusal, sizeof e->refusal,
                 "host %s (port %d) resolves to %s, an internal address (loopback, private, "
                 "link-local, multicast or reserved)",
                 r->host, r->port, addr);
    pthread_mutex_unlock(&e->mu);
    say(e, "warn", "egress refused: internal address", r, addr);
}

/* A connected socket to sa within CONNECT_MS, or -1. */
static int connect_to(enc_egress *e, const struct addrinfo *a)
{
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), soerr = 0;
    socklen_t sl = sizeof soerr;
    if (fd < 0)
        return -1;
    if (connect(fd, a->ai_addr, a->ai_addrlen) < 0 &&
        (errno != EINPROGRESS || wait_fd(e, fd, POLLOUT, CONNECT_MS) <= 0 ||
         getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0)) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

/* Resolves, vets every address, connects: 0 with c->s->ufd set, or the
 * status to answer (403 refused, 502 unresolvable or unreachable). */
static int open_upstream(conn *c)
{
    enc_egress *e = c->e;
    const enc_egress_req *r = &c->req;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    char port[8], addr[INET6_ADDRSTRLEN] = "";
    snprintf(port, sizeof port, "%d", r->port);
    if (getaddrinfo(r->host, port, &hints, &ai) != 0 || !ai) {
        say(e, "info", "egress: cannot resolve host", r, "");
        return 502;
    }
    enc_egress_policy *pol = malloc(sizeof *pol);
    int status = pol ? 0 : 502;
    if (pol) {
        pthread_mutex_lock(&e->mu);
        *pol = e->policy;
        pthread_mutex_unlock(&e->mu);
    }
    for (struct addrinfo *a = ai; a && status == 0; a = a->ai_next)
        if (!enc_egress_allowed(pol, a->ai_addr)) {
            addr_text(a->ai_addr, a->ai_addrlen, addr, sizeof addr);
            record_refusal(e, r, addr);
            status = 403;
        }
    int fd = -1;
    for (struct addrinfo *a = ai; a && status == 0 && fd < 0; a = a->ai_next)
        fd = connect_to(e, a);
    if (status == 0 && fd < 0) {
        say(e, "info", "egress: cannot connect", r, "");
        status = 502;
    }
    pthread_mutex_lock(&e->mu);
    c->s->ufd = fd;
    pthread_mutex_unlock(&e->mu);
    free(pol);
    freeaddrinfo(ai);
    return status;
}

/* Rewrites and forwards every complete request in c->buf; false when one is
 * refused or names another destination (the connection is cut then). */
static bool forward_requests(conn *c, char *out)
{
    char why[128];
    enc_egress_req next;
    for (;;) {
        int rc = enc_egress_parse(c->buf, c->len, &next, why, sizeof why);
        if (rc == 0)
            return true;
        if (rc < 0 || next.connect || next.port != c->req.port ||
            strcasecmp(next.host, c->req.host) != 0)
            return false;
        size_t n = enc_egress_rewrite(c->buf, &next, out, ENC_EGRESS_MAX_HEAD + 64);
        if (n == 0 || !send_all(c->s->ufd, out, n))
            return false;
        c->len -= next.head_len;
        memmove(c->buf, c->buf + next.head_len, c->len);
    }
}

/* Client bytes: raw for CONNECT, parsed requests otherwise. False ends the relay. */
static bool from_client(conn *c, char *tmp, bool *eof)
{
    size_t room = c->req.connect ? RELAY_BUF : ENC_EGRESS_MAX_HEAD - c->len;
    char *dst = c->req.connect ? tmp : c->buf + c->len;
    ssize_t r = recv(c->s->cfd, dst, room, 0);
    if (r < 0 && errno == EINTR)
        return true;
    if (r <= 0) {
        *eof = true;
        return r == 0 && shutdown(c->s->ufd, SHUT_WR) == 0;
    }
    if (c->req.connect)
        return send_all(c->s->ufd, tmp, (size_t)r);
    c->len += (size_t)r;
    return forward_requests(c, tmp);
}

static bool from_upstream(conn *c, char *tmp, bool *eof)
{
    ssize_t r = recv(c->s->ufd, tmp, RELAY_BUF, 0);
    if (r < 0 && errno == EINTR)
        return true;
    if (r <= 0) {
        *eof = true;
        return r == 0 && shutdown(c->s->cfd, SHUT_WR) == 0;
    }
    return send_all(c->s->cfd, tmp, (size_t)r);
}

/* Relays until both sides are done, an error, IDLE_MS of silence, or stop. */
static void relay(conn *c)
{
    char *tmp = malloc(ENC_EGRESS_MAX_HEAD + 64 > RELAY_BUF ? ENC_EGRESS_MAX_HEAD + 64 : RELAY_BUF);
    bool ceof = false, ueof = false, ok = tmp != NULL;
    while (ok && !(ceof && ueof)) {
        struct pollfd p[3] = {{.fd = ceof ? -1 : c->s->cfd, .events = POLLIN},
                              {.fd = ueof ? -1 : c->s->ufd, .events = POLLIN},
                              {.fd = c->e->stop_r, .events = POLLIN}};
        int n = poll(p, 3, IDLE_MS);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0 || p[2].revents)
            break;
        if (p[0].revents)
            ok = from_client(c, tmp, &ceof);
        if (ok && p[1].revents)
            ok = from_upstream(c, tmp, &ueof);
    }
    free(tmp);
}

static void serve(conn *c)
{
    if (read_head(c) != 1)
        return;
    int status = open_upstream(c);
    if (status != 0) {
        answer(c->s->cfd, status);
        return;
    }
    if (c->req.connect) {
        answer(c->s->cfd, 200);
        c->len -= c->req.head_len; /* bytes sent ahead of our answer belong to the tunnel */
        memmove(c->buf, c->buf + c->req.head_len, c->len);
        if (c->len && !send_all(c->s->ufd, c->buf, c->len))
            return;
        c->len = 0;
    } else {
        say(c->e, "debug", "egress: request forwarded", &c->req, "");
    }
    char *out = c->req.connect ? NULL : malloc(ENC_EGRESS_MAX_HEAD + 64);
    if (c->req.connect || (out && forward_requests(c, out)))
        relay(c);
    free(out);
}

static void *conn_main(void *arg)
{
    conn *c = arg;
    enc_egress *e = c->e;
    slot *s = c->s;
    serve(c);
    pthread_mutex_lock(&e->mu);
    int cfd = s->cfd, ufd = s->ufd;
    s->cfd = s->ufd = -1;
    s->live = false;
    pthread_mutex_unlock(&e->mu);
    close(cfd);
    if (ufd >= 0)
        close(ufd);
    free(c->buf);
    free(c);
    return NULL;
}

/* A free slot (its previous thread joined), or NULL. Acceptor thread only. */
static slot *free_slot(enc_egress *e)
{
    slot *s = NULL;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < ENC_EGRESS_MAX_CONN && !s; i++)
        if (!e->slots[i].live)
            s = &e->slots[i];
    pthread_mutex_unlock(&e->mu);
    if (s && s->started) {
        pthread_join(s->th, NULL);
        s->started = false;
    }
    return s;
}

static void start_conn(enc_egress *e, int fd)
{
    slot *s = free_slot(e);
    conn *c = s ? calloc(1, sizeof *c) : NULL;
    char *buf = c ? malloc(ENC_EGRESS_MAX_HEAD) : NULL;
    if (!buf) {
        answer(fd, 503);
        close(fd);
        free(c);
        return;
    }
    *c = (conn){.e = e, .s = s, .buf = buf};
    pthread_mutex_lock(&e->mu);
    s->live = true;
    s->cfd = fd;
    s->ufd = -1;
    pthread_mutex_unlock(&e->mu);
    if (pthread_create(&s->th, NULL, conn_main, c) == 0) {
        s->started = true;
        return;
    }
    pthread_mutex_lock(&e->mu);
    s->live = false;
    s->cfd = -1;
    pthread_mutex_unlock(&e->mu);
    answer(fd, 503);
    close(fd);
    free(buf);
    free(c);
}

static void *accept_main(void *arg)
{
    enc_egress *e = arg;
    for (;;) {
        struct pollfd p[2] = {{.fd = e->lfd, .events = POLLIN},
                              {.fd = e->stop_r, .events = POLLIN}};
        if (poll(p, 2, -1) < 0 && errno != EINTR)
            break;
        if (p[1].revents)
            break;
        if (!p[0].revents)
            continue;
        int fd = accept4(e->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0)
            start_conn(e, fd);
        else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
            poll(NULL, 0, 100); /* the backlog stays readable: do not spin */
    }
    return NULL;
}

static int listen_local(int *fd, int *port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (*fd < 0)
        return errno;
    if (bind(*fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(*fd, 64) < 0 ||
        getsockname(*fd, (struct sockaddr *)&sa, &sl) < 0) {
        int rc = errno;
        close(*fd);
        *fd = -1;
        return rc;
    }
    *port = ntohs(sa.sin_port);
    return 0;
}

int enc_egress_start(const enc_egress_policy *policy, enc_egress_log_fn log, void *ud,
                     enc_egress **out)
{
    enc_egress *e = calloc(1, sizeof *e);
    int pipefd[2], port = 0, rc;
    *out = NULL;
    if (!e)
        return ENOMEM;
    e->policy = *policy;
    e->log = log;
    e->ud = ud;
    for (size_t i = 0; i < ENC_EGRESS_MAX_CONN; i++)
        e->slots[i].cfd = e->slots[i].ufd = -1;
    if ((rc = listen_local(&e->lfd, &port)) != 0) {
        free(e);
        return rc;
    }
    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        rc = errno;
        close(e->lfd);
        free(e);
        return rc;
    }
    e->stop_r = pipefd[0];
    e->stop_w = pipefd[1];
    snprintf(e->url, sizeof e->url, "http://127.0.0.1:%d", port);
    pthread_mutex_init(&e->mu, NULL);
    if ((rc = pthread_create(&e->acceptor, NULL, accept_main, e)) != 0) {
        pthread_mutex_destroy(&e->mu);
        close(e->lfd);
        close(e->stop_r);
        close(e->stop_w);
        free(e);
        return rc;
    }
    *out = e;
    return 0;
}

const char *enc_egress_url(const enc_egress *e)
{
    return e->url;
}

void enc_egress_set_policy(enc_egress *e, const enc_egress_policy *policy)
{
    pthread_mutex_lock(&e->mu);
    e->policy = *policy;
    pthread_mutex_unlock(&e->mu);
}

bool enc_egress_refusal(enc_egress *e, char *buf, size_t n)
{
    pthread_mutex_lock(&e->mu);
    bool refused = e->refusal[0] != '\0';
    if (refused)
        snprintf(buf, n, "%s", e->refusal);
    pthread_mutex_unlock(&e->mu);
    return refused;
}

void enc_egress_stop(enc_egress *e)
{
    if (!e)
        return;
    while (write(e->stop_w, "x", 1) < 0 && errno == EINTR)
        ;
    pthread_join(e->acceptor, NULL);
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; i < ENC_EGRESS_MAX_CONN; i++) {
        if (e->slots[i].cfd >= 0)
            shutdown(e->slots[i].cfd, SHUT_RDWR);
        if (e->slots[i].ufd >= 0)
            shutdown(e->slots[i].ufd, SHUT_RDWR);
    }
    pthread_mutex_unlock(&e->mu);
    for (size_t i = 0; i < ENC_EGRESS_MAX_CONN; i++)
        if (e->slots[i].started)
            pthread_join(e->slots[i].th, NULL);
    close(e->lfd);
    close(e->stop_r);
    close(e->stop_w);
    pthread_mutex_destroy(&e->mu);
    free(e);
}
