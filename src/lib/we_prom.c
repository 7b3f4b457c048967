/*
 * Prometheus text format writer. Stateless.
 */
#include "we_prom.h"

#include <math.h>

void we_prom_family(we_buf *b, const char *name, const char *type, const char *help)
{
    we_buf_printf(b, "# HELP %s ", name);
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            we_buf_adds(b, "\\\\");
        else if (*p == '\n')
            we_buf_adds(b, "\\n");
        else
            we_buf_addc(b, *p);
    }
    we_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void label_value(we_buf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            we_buf_adds(b, "\\\\");
        else if (*v == '"')
            we_buf_adds(b, "\\\"");
        else if (*v == '\n')
            we_buf_adds(b, "\\n");
        else
            we_buf_addc(b, *v);
    }
}

void we_prom_sample(we_buf *b, const char *name, const char *const *labels, double value)
{
    we_buf_adds(b, name);
    if (labels && labels[0]) {
        we_buf_addc(b, '{');
        for (int i = 0; labels[i] && labels[i + 1]; i += 2) {
            we_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i]);
            label_value(b, labels[i + 1]);
            we_buf_addc(b, '"');
        }
        we_buf_addc(b, '}');
    }
    if (isnan(value))
        we_buf_adds(b, " NaN\n");
    else if (isinf(value))
        we_buf_adds(b, value > 0 ? " +Inf\n" : " -Inf\n");
    else if (value == floor(value) && fabs(value) < 1e15)
        we_buf_printf(b, " %.0f\n", value);
    else
        we_buf_printf(b, " %.17g\n", value);
}
