/*
 * Capability detection, run once on the main thread before the worker
 * connects; the resulting wk_caps is read-only afterwards.
 *
 * Design: the encoder table of `ffmpeg -encoders` is parsed from text (so it
 * is testable), then each hardware encoder is sorted into a family by its
 * name (nvenc, qsv, amf, vaapi, other). A family's encoders are only tried
 * when its device is there (/dev/nvidia*, a DRM render node of the right PCI
 * vendor), so machines without GPUs pay nothing; a tried encoder is usable
 * only when a 1-frame test encode through o->test succeeds. Results are
 * cached per (encoder, render node), and the capability rules at the bottom
 * read only the outcome. The device roots are options so tests can point
 * them at a fake tree.
 */
#include "caps.h"
#include "proc.h"
#include "we_util.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VENDOR_INTEL 0x8086u
#define VENDOR_AMD 0x1002u
#define MAX_NODES 8
#define MAX_TRIED 64

void wk_caps_init(wk_caps *c)
{
    wk_strlist_init(&c->capabilities);
    wk_strlist_init(&c->encoders);
    wk_strlist_init(&c->rejected);
    c->ffmpeg_version = NULL;
}

void wk_caps_fini(wk_caps *c)
{
    wk_strlist_fini(&c->capabilities);
    wk_strlist_fini(&c->encoders);
    wk_strlist_fini(&c->rejected);
    free(c->ffmpeg_version);
    c->ffmpeg_version = NULL;
}

/* --- `ffmpeg -encoders` and `ffmpeg -version` text ------------------------ */

/* The next whitespace-delimited token in [p, end); its length in *len. */
static const char *next_token(const char *p, const char *end, size_t *len)
{
    while (p < end && isspace((unsigned char)*p))
        p++;
    const char *s = p;
    while (p < end && !isspace((unsigned char)*p))
        p++;
    *len = (size_t)(p - s);
    return s;
}

/* " V....D" style flags: type letter, then five of '.' or a capital. */
static bool is_flags(const char *s, size_t n)
{
    if (n != 6 || (s[0] != 'V' && s[0] != 'A' && s[0] != 'S'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] != '.' && !isupper((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_name(const char *s, size_t n)
{
    if (n == 0 || n > 63)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

static void parse_line(const char *p, const char *end, wk_strlist *out)
{
    size_t flen, nlen;
    const char *flags = next_token(p, end, &flen);
    if (!is_flags(flags, flen) || flags[0] == 'S')
        return;
    const char *name = next_token(flags + flen, end, &nlen);
    if (!is_name(name, nlen))
        return;
    char tmp[64];
    memcpy(tmp, name, nlen);
    tmp[nlen] = '\0';
    if (!wk_strlist_has(out, tmp))
        wk_strlist_add(out, tmp);
}

void wk_encoders_parse(const char *text, wk_strlist *out)
{
    const char *p = text;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        parse_line(p, end, out);
        p = eol ? eol + 1 : end;
    }
}

int wk_ffmpeg_version_parse(const char *text, char *buf, size_t n)
{
    const char *eol = strchr(text, '\n');
    const char *end = eol ? eol : text + strlen(text);
    size_t len;
    const char *word = next_token(text, end, &len);
    if (len != 6 || strncmp(word, "ffmpeg", 6) != 0)
        return WE_ENOENT;
    word = next_token(word + len, end, &len);
    if (len != 7 || strncmp(word, "version", 7) != 0)
        return WE_ENOENT;
    word = next_token(word + len, end, &len);
    if (len == 0 || len > 63 || len >= n)
        return WE_ENOENT;
    for (size_t i = 0; i < len; i++)
        if (!isgraph((unsigned char)word[i]) || word[i] == '"' || word[i] == '\\')
            return WE_ENOENT;
    memcpy(buf, word, len);
    buf[len] = '\0';
    return 0;
}

/* --- the device tree -------------------------------------------------------- */

typedef struct hw_node {
    char path[1024]; /* <dev_root>/dri/renderD128 */
    unsigned vendor; /* PCI vendor id, 0 when unknown */
} hw_node;

typedef struct hw_tried {
    const char *encoder; /* points into the listed names */
    int node;            /* index into nodes, -1 for none */
    bool ok;
} hw_tried;

typedef struct detect {
    const wk_caps_opts *o;
    const wk_strlist *listed;
    wk_caps *out;
    bool nvidia_dev;
    hw_node nodes[MAX_NODES];
    int n_nodes;
    hw_tried tried[MAX_TRIED];
    int n_tried;
} detect;

static bool path_exists(const char *root, const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    /* existence only: opening a GPU device node can have side effects */
    return access(p, F_OK) == 0;
}

static unsigned read_vendor(const char *sys_root, const char *node_name)
{
    char p[512], line[32] = "";
    snprintf(p, sizeof p, "%s/class/drm/%s/device/vendor", sys_root, node_name);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    fclose(f);
    return (unsigned)strtoul(line, NULL, 16);
}

static int cmp_nodes(const void *a, const void *b)
{
    return strcmp(((const hw_node *)a)->path, ((const hw_node *)b)->path);
}

static void scan_render_nodes(detect *d)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/dri", d->o->dev_root);
    DIR *dp = opendir(dir);
    struct dirent *e;
    while (dp && d->n_nodes < MAX_NODES && (e = readdir(dp)) != NULL) {
        if (strncmp(e->d_name, "renderD", 7) != 0 || strlen(e->d_name) > 32)
            continue;
        hw_node *n = &d->nodes[d->n_nodes++];
        snprintf(n->path, sizeof n->path, "%s/%s", dir, e->d_name);
        n->vendor = read_vendor(d->o->sys_root, e->d_name);
    }
    if (dp)
        closedir(dp);
    qsort(d->nodes, (size_t)d->n_nodes, sizeof d->nodes[0], cmp_nodes);
}

static bool has_vendor(const detect *d, unsigned vendor)
{
    for (int i = 0; i < d->n_nodes; i++)
        if (d->nodes[i].vendor == vendor)
            return true;
    return false;
}

/* --- hardware encoder families ---------------------------------------------- */

typedef enum family { FAM_SOFTWARE, FAM_NVENC, FAM_QSV, FAM_AMF, FAM_VAAPI, FAM_OTHER_HW } family;

static const struct {
    const char *marker;
    bool anywhere; /* else the name must end with marker */
    family fam;
} family_table[] = {
    { "nvenc", true, FAM_NVENC }, /* also the old aliases nvenc, nvenc_h264, nvenc_hevc */
    { "_qsv", false, FAM_QSV },
    { "_amf", false, FAM_AMF },
    { "_vaapi", false, FAM_VAAPI },
    /* hardware this worker does not drive: never advertised */
    { "_v4l2m2m", false, FAM_OTHER_HW },
    { "_videotoolbox", false, FAM_OTHER_HW },
    { "_mediacodec", false, FAM_OTHER_HW },
    { "_omx", false, FAM_OTHER_HW },
    { "_mf", false, FAM_OTHER_HW },
    { "_vulkan", false, FAM_OTHER_HW },
    { "_rkmpp", false, FAM_OTHER_HW },
    { "_mmal", false, FAM_OTHER_HW },
    { "_d3d12va", false, FAM_OTHER_HW },
};

static family family_of(const char *encoder)
{
    size_t n = strlen(encoder);
    for (size_t i = 0; i < sizeof family_table / sizeof family_table[0]; i++) {
        const char *m = family_table[i].marker;
        size_t k = strlen(m);
        if (family_table[i].anywhere ? strstr(encoder, m) != NULL
                                     : n > k && strcmp(encoder + n - k, m) == 0)
            return family_table[i].fam;
    }
    return FAM_SOFTWARE;
}

static void reject(detect *d, const char *encoder, int node, const char *why)
{
    char line[1400];
    snprintf(line, sizeof line, "%s%s%s: %s", encoder, node >= 0 ? " on " : "",
             node >= 0 ? d->nodes[node].path : "", why[0] ? why : "test encode failed");
    wk_strlist_add(&d->out->rejected, line);
}

/* Runs (or recalls) the test encode of encoder on node (-1: none). */
static bool try_encoder(detect *d, const char *encoder, int node)
{
    for (int i = 0; i < d->n_tried; i++)
        if (strcmp(d->tried[i].encoder, encoder) == 0 && d->tried[i].node == node)
            return d->tried[i].ok;
    bool ok = true;
    if (d->o->test) {
        we_buf why;
        we_buf_init(&why);
        ok = d->o->test(d->o->test_ctx, encoder, node >= 0 ? d->nodes[node].path : NULL, &why);
        if (!ok)
            reject(d, encoder, node, why.data ? why.data : "");
        we_buf_fini(&why);
    }
    if (d->n_tried < MAX_TRIED)
        d->tried[d->n_tried++] = (hw_tried){ encoder, node, ok };
    return ok;
}

/* Whether one device-less test of encoder is warranted by the family's device. */
static bool device_present(const detect *d, family fam)
{
    switch (fam) {
    case FAM_NVENC:
        return d->nvidia_dev;
    case FAM_QSV:
        return has_vendor(d, VENDOR_INTEL);
    case FAM_AMF:
        return has_vendor(d, VENDOR_AMD);
    default:
        return false;
    }
}

static bool hw_usable(detect *d, const char *encoder, family fam)
{
    if (fam == FAM_VAAPI) {
        for (int i = 0; i < d->n_nodes; i++)
            if (try_encoder(d, encoder, i))
                return true;
        return false;
    }
    return device_present(d, fam) && try_encoder(d, encoder, -1);
}

static void collect_encoders(detect *d)
{
    for (size_t i = 0; i < d->listed->n; i++) {
        const char *e = d->listed->v[i];
        family fam = family_of(e);
        if (fam == FAM_SOFTWARE || (fam != FAM_OTHER_HW && hw_usable(d, e, fam)))
            wk_strlist_add(&d->out->encoders, e);
    }
}

/* --- capability rules ------------------------------------------------------- */

static bool usable(const detect *d, const char *encoder)
{
    return wk_strlist_has(&d->out->encoders, encoder);
}

static bool cap_nvidia(detect *d)
{
    return usable(d, "h264_nvenc") || usable(d, "hevc_nvenc");
}

static bool cap_intel(detect *d)
{
    return usable(d, "h264_qsv") || usable(d, "hevc_qsv");
}

/* AMF, or VAAPI working on an AMD render node. */
static bool cap_amd(detect *d)
{
    if (usable(d, "h264_amf"))
        return true;
    if (!wk_strlist_has(d->listed, "h264_vaapi"))
        return false;
    for (int i = 0; i < d->n_nodes; i++)
        if (d->nodes[i].vendor == VENDOR_AMD && try_encoder(d, "h264_vaapi", i))
            return true;
    return false;
}

static bool cap_vaapi(detect *d)
{
    return usable(d, "h264_vaapi");
}

static const struct {
    const char *name;
    bool (*present)(detect *d);
} cap_rules[] = {
    { "nvidia", cap_nvidia },
    { "intel", cap_intel },
    { "amd", cap_amd },
    { "vaapi", cap_vaapi },
};

void wk_caps_detect(const wk_caps_opts *o, const wk_strlist *listed, wk_caps *out)
{
    wk_caps_opts def = *o;
    def.dev_root = o->dev_root ? o->dev_root : "/dev";
    def.sys_root = o->sys_root ? o->sys_root : "/sys";
    detect d = { .o = &def, .listed = listed, .out = out };
    d.nvidia_dev = path_exists(def.dev_root, "nvidiactl") && path_exists(def.dev_root, "nvidia0");
    scan_render_nodes(&d);
    collect_encoders(&d);
    if (!wk_strlist_has(&out->capabilities, "cpu"))
        wk_strlist_add(&out->capabilities, "cpu");
    for (size_t i = 0; i < sizeof cap_rules / sizeof cap_rules[0]; i++)
        if (cap_rules[i].present(&d))
            wk_strlist_add(&out->capabilities, cap_rules[i].name);
}

/* --- running FFmpeg --------------------------------------------------------- */

/* Runs ffmpeg with args, its stdout into out; a non-zero exit is an error. */
static int run_ffmpeg(const char *ffmpeg, const char *arg, we_buf *out, we_err *err)
{
    char *argv[] = { (char *)ffmpeg, "-hide_banner", (char *)arg, NULL };
    wk_proc_opts po = { .timeout_ms = 10000, .max_out = 1 << 20, .with_stderr = false };
    int code = 0;
    int rc = wk_proc_run(argv, &po, out, &code, err);
    if (rc == 0 && code != 0)
        rc = we_err_set(err, WE_EIO, "%s %s exited with status %d", ffmpeg, arg, code);
    return rc;
}

static void probe_version(const char *ffmpeg, wk_caps *out)
{
    we_buf text;
    char v[64];
    we_buf_init(&text);
    /* -version prints its banner even with -hide_banner: that is the output */
    if (run_ffmpeg(ffmpeg, "-version", &text, NULL) == 0 && text.data &&
        wk_ffmpeg_version_parse(text.data, v, sizeof v) == 0)
        out->ffmpeg_version = strdup(v);
    we_buf_fini(&text);
}

int wk_caps_probe(const wk_caps_opts *o, wk_caps *out, we_err *err)
{
    const char *ffmpeg = o->ffmpeg ? o->ffmpeg : "ffmpeg";
    wk_strlist listed;
    we_buf text;
    wk_strlist_init(&listed);
    we_buf_init(&text);
    int rc = run_ffmpeg(ffmpeg, "-encoders", &text, err);
    if (rc != 0) {
        wk_strlist_add(&out->capabilities, "cpu");
        goto done;
    }
    wk_encoders_parse(text.data ? text.data : "", &listed);
    probe_version(ffmpeg, out);
    wk_caps_detect(o, &listed, out);
done:
    wk_strlist_fini(&listed);
    we_buf_fini(&text);
    return rc;
}

/* The first non-empty line of FFmpeg's error output (the cause; later lines
 * are generic, such as "Error while opening encoder"), for the log. */
static void first_line(const we_buf *text, we_buf *why)
{
    size_t start = 0;
    while (start < text->len && isspace((unsigned char)text->data[start]))
        start++;
    size_t end = start;
    while (end < text->len && text->data[end] != '\n' && end - start < 200)
        end++;
    we_buf_add(why, text->data + start, end - start);
}

static void push(char **argv, int *n, const char *const *args, size_t count)
{
    for (size_t i = 0; i < count; i++)
        argv[(*n)++] = (char *)args[i];
}

/* ffmpeg [-init_hw_device ...] -f lavfi -i color... [-vf upload] -c:v enc -f null - */
static void test_argv(char **argv, const char *ffmpeg, const char *encoder, const char *hwdev)
{
    const char *head[] = { ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error" };
    const char *hw[] = { "-init_hw_device", hwdev, "-filter_hw_device", "wk" };
    const char *input[] = { "-f", "lavfi", "-i", "color=s=256x256:d=0.04" };
    const char *upload[] = { "-vf", "format=nv12,hwupload" };
    const char *output[] = { "-frames:v", "1", "-c:v", encoder, "-f", "null", "-" };
    int n = 0;
    push(argv, &n, head, 5);
    if (hwdev)
        push(argv, &n, hw, 4);
    push(argv, &n, input, 4);
    if (hwdev)
        push(argv, &n, upload, 2);
    push(argv, &n, output, 7);
    argv[n] = NULL;
}

bool wk_ffmpeg_encode_test(void *ctx, const char *encoder, const char *render_node, we_buf *why)
{
    char hwdev[1100], *argv[32];
    int code = -1;
    we_buf out;
    we_err err;
    if (we_stopping()) /* the worker is going away: do not start another encoder */
        return false;
    snprintf(hwdev, sizeof hwdev, "vaapi=wk:%s", render_node ? render_node : "");
    test_argv(argv, ctx ? ctx : "ffmpeg", encoder, render_node ? hwdev : NULL);
    we_buf_init(&out);
    wk_proc_opts po = { .timeout_ms = 10000, .max_out = 16384, .with_stderr = true };
    int rc = wk_proc_run(argv, &po, &out, &code, &err);
    if (rc != 0)
        we_buf_adds(why, err.msg);
    else if (code != 0 && out.len > 0)
        first_line(&out, why);
    else if (code != 0)
        we_buf_printf(why, "exit status %d", code);
    we_buf_fini(&out);
    return rc == 0 && code == 0;
}
