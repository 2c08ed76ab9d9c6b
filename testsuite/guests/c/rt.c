/* The shared runtime: see rt.h. Written for this test suite. */
#include "rt.h"

/* Where formatted characters go: the console, or a buffer. */
struct sink {
    char *buf;
    size_t cap;
    size_t len;
};

static void put(struct sink *s, char c)
{
    if (s->buf) {
        if (s->len + 1 < s->cap)
            s->buf[s->len] = c;
    } else {
        rt_putc(c);
    }
    s->len++;
}

static void puts_n(struct sink *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(s, p[i]);
}

struct spec {
    int left, zero, plus, space, alt;
    int width;
    int prec; /* -1: none */
};

static void pad(struct sink *s, int n, char c)
{
    while (n-- > 0)
        put(s, c);
}

/* Emits body (with its sign prefix) padded to the field width. */
static void field(struct sink *s, const struct spec *sp, const char *sign, const char *body,
                  size_t len)
{
    size_t sl = strlen(sign);
    int fill = sp->width - (int)(sl + len);
    if (!sp->left && !sp->zero)
        pad(s, fill, ' ');
    puts_n(s, sign, sl);
    if (!sp->left && sp->zero)
        pad(s, fill, '0');
    puts_n(s, body, len);
    if (sp->left)
        pad(s, fill, ' ');
}

static size_t utoa(char *out, unsigned long long v, unsigned base, int upper)
{
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    char tmp[32];
    size_t n = 0;
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static void integer(struct sink *s, const struct spec *sp, unsigned long long mag, int neg,
                    unsigned base, int upper)
{
    char body[40];
    size_t n = utoa(body, mag, base, upper);
    if (sp->prec >= 0 && (size_t)sp->prec > n) {
        size_t z = (size_t)sp->prec - n;
        memmove(body + z, body, n);
        memset(body, '0', z);
        n += z;
    }
    const char *sign = neg ? "-" : sp->plus ? "+" : sp->space ? " " : "";
    if (sp->alt && base == 16 && mag)
        sign = upper ? "0X" : "0x";
    field(s, sp, sign, body, n);
}

/* Floating-point formatting, written once as a macro for double and long
 * double: the digits come from the value scaled into a 64-bit integer, so
 * %f, %e and %g use the FPU the way compiled code does (multiplications,
 * divisions, compares, conversions). At most 17 significant digits. */
#define FLOAT_FORMAT(NAME, T, POW10)                                                       \
    static T POW10(int n)                                                                   \
    {                                                                                       \
        T r = 1;                                                                            \
        T b = 10;                                                                           \
        int neg = n < 0;                                                                    \
        if (neg)                                                                            \
            n = -n;                                                                         \
        while (n) {                                                                         \
            if (n & 1)                                                                      \
                r *= b;                                                                     \
            b *= b;                                                                         \
            n >>= 1;                                                                        \
        }                                                                                   \
        return neg ? 1 / r : r;                                                             \
    }                                                                                       \
    /* Decimal exponent of x > 0: 10^e <= x < 10^(e+1) (up to rounding). */                 \
    static int NAME##_exp10(T x)                                                            \
    {                                                                                       \
        int e = 0;                                                                          \
        while (x >= (T)1e32) {                                                              \
            x /= (T)1e32;                                                                   \
            e += 32;                                                                        \
        }                                                                                   \
        while (x >= 10) {                                                                   \
            x /= 10;                                                                        \
            e++;                                                                            \
        }                                                                                   \
        while (x < (T)1e-32) {                                                              \
            x *= (T)1e32;                                                                   \
            e -= 32;                                                                        \
        }                                                                                   \
        while (x < 1) {                                                                     \
            x *= 10;                                                                        \
            e--;                                                                            \
        }                                                                                   \
        return e;                                                                           \
    }                                                                                       \
    /* digits of x rounded to sig significant digits (sig <= 17); *e is its exponent. */    \
    static unsigned long long NAME##_digits(T x, int sig, int *e)                           \
    {                                                                                       \
        int ex = NAME##_exp10(x);                                                           \
        int sc = sig - 1 - ex;                                                              \
        /* In steps, so that 10^sc does not overflow for denormals. */                      \
        for (; sc > 256; sc -= 256)                                                         \
            x *= POW10(256);                                                                \
        for (; sc < -256; sc += 256)                                                        \
            x *= POW10(-256);                                                               \
        T scaled = x * POW10(sc);                                                           \
        unsigned long long d = (unsigned long long)(scaled + (T)0.5);                       \
        unsigned long long lim = 1;                                                         \
        for (int i = 0; i < sig; i++)                                                       \
            lim *= 10;                                                                      \
        if (d >= lim) {                                                                     \
            d /= 10;                                                                        \
            ex++;                                                                           \
        }                                                                                   \
        *e = ex;                                                                            \
        return d;                                                                           \
    }                                                                                       \
    static void NAME(struct sink *s, const struct spec *sp, T v, char conv)                 \
    {                                                                                       \
        char body[96];                                                                      \
        size_t n = 0;                                                                       \
        int neg = v < 0 || (v == 0 && 1 / v < 0);                                           \
        const char *sign = neg ? "-" : sp->plus ? "+" : sp->space ? " " : "";               \
        T x = neg ? -v : v;                                                                 \
        int upper = conv == 'E' || conv == 'G' || conv == 'F';                              \
        if (x != x || x - x != 0) {                                                         \
            const char *w = x != x ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");     \
            struct spec plain = *sp;                                                        \
            plain.zero = 0;                                                                 \
            field(s, &plain, sign, w, 3);                                                   \
            return;                                                                         \
        }                                                                                   \
        int prec = sp->prec < 0 ? 6 : sp->prec;                                             \
        char c = conv | 0x20;                                                               \
        int strip = 0;                                                                      \
        if (c == 'g') {                                                                     \
            int p = prec == 0 ? 1 : prec > 17 ? 17 : prec;                                  \
            int ex = 0;                                                                     \
            if (x != 0)                                                                     \
                NAME##_digits(x, p, &ex);                                                   \
            if (ex < -4 || ex >= p) {                                                       \
                c = 'e';                                                                    \
                prec = p - 1;                                                               \
            } else {                                                                        \
                c = 'f';                                                                    \
                prec = p - 1 - ex;                                                          \
            }                                                                               \
            strip = !sp->alt;                                                               \
        }                                                                                   \
        if (prec > 17)                                                                      \
            prec = 17;                                                                      \
        int ex = 0;                                                                         \
        unsigned long long d = 0;                                                           \
        char dig[24];                                                                       \
        size_t nd;                                                                          \
        if (c == 'f' && x >= (T)1e17) {                                                     \
            /* Large: 17 significant digits, zeros to the point. */                         \
            d = NAME##_digits(x, 17, &ex);                                                  \
            nd = utoa(dig, d, 10, 0);                                                       \
            if (ex > 60) {                                                                  \
                c = 'e';                                                                    \
            } else {                                                                        \
                memcpy(body, dig, nd);                                                      \
                n = nd;                                                                     \
                while ((int)n <= ex)                                                        \
                    body[n++] = '0';                                                        \
                if (prec > 0 || sp->alt)                                                    \
                    body[n++] = '.';                                                        \
                for (int i = 0; i < prec; i++)                                              \
                    body[n++] = '0';                                                        \
            }                                                                               \
        } else if (c == 'f') {                                                              \
            /* Fixed: integer part, then prec fraction digits. */                           \
            T scale = POW10(prec);                                                          \
            T y = x * scale + (T)0.5;                                                       \
            if (y >= (T)1.8e19) {                                                           \
                c = 'e';                                                                    \
            } else {                                                                        \
                d = (unsigned long long)y;                                                  \
                nd = utoa(dig, d, 10, 0);                                                   \
                while ((int)nd <= prec) {                                                   \
                    memmove(dig + 1, dig, nd);                                              \
                    dig[0] = '0';                                                           \
                    nd++;                                                                   \
                }                                                                           \
                size_t ip = nd - (size_t)prec;                                              \
                memcpy(body, dig, ip);                                                      \
                n = ip;                                                                     \
                if (prec > 0 || sp->alt)                                                    \
                    body[n++] = '.';                                                        \
                memcpy(body + n, dig + ip, (size_t)prec);                                   \
                n += (size_t)prec;                                                          \
            }                                                                               \
        }                                                                                   \
        if (c == 'e') {                                                                     \
            if (x != 0)                                                                     \
                d = NAME##_digits(x, prec + 1, &ex);                                        \
            nd = utoa(dig, d, 10, 0);                                                       \
            while ((int)nd < prec + 1)                                                      \
                dig[nd++] = '0';                                                            \
            body[0] = dig[0];                                                               \
            n = 1;                                                                          \
            if (prec > 0 || sp->alt)                                                        \
                body[n++] = '.';                                                            \
            memcpy(body + n, dig + 1, (size_t)prec);                                        \
            n += (size_t)prec;                                                              \
            if (strip && memchr_dot(body, n)) {                                             \
                while (body[n - 1] == '0')                                                  \
                    n--;                                                                    \
                if (body[n - 1] == '.')                                                     \
                    n--;                                                                    \
            }                                                                               \
            body[n++] = upper ? 'E' : 'e';                                                  \
            body[n++] = ex < 0 ? '-' : '+';                                                 \
            unsigned ae = (unsigned)(ex < 0 ? -ex : ex);                                    \
            if (ae < 10)                                                                    \
                body[n++] = '0';                                                            \
            n += utoa(body + n, ae, 10, 0);                                                 \
        } else if (strip && memchr_dot(body, n)) {                                          \
            while (body[n - 1] == '0')                                                      \
                n--;                                                                        \
            if (body[n - 1] == '.')                                                         \
                n--;                                                                        \
        }                                                                                   \
        field(s, sp, sign, body, n);                                                        \
    }

static int memchr_dot(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] == '.')
            return 1;
    return 0;
}

FLOAT_FORMAT(fmt_double, double, pow10_d)
FLOAT_FORMAT(fmt_ldouble, long double, pow10_ld)

static int format(struct sink *s, const char *f, va_list ap)
{
    for (; *f; f++) {
        if (*f != '%') {
            put(s, *f);
            continue;
        }
        struct spec sp = {0, 0, 0, 0, 0, 0, -1};
        for (;; f++) {
            char c = f[1];
            if (c == '-')
                sp.left = 1;
            else if (c == '0')
                sp.zero = 1;
            else if (c == '+')
                sp.plus = 1;
            else if (c == ' ')
                sp.space = 1;
            else if (c == '#')
                sp.alt = 1;
            else
                break;
        }
        f++;
        if (*f == '*') {
            sp.width = va_arg(ap, int);
            f++;
        } else {
            while (*f >= '0' && *f <= '9')
                sp.width = sp.width * 10 + (*f++ - '0');
        }
        if (*f == '.') {
            f++;
            sp.prec = 0;
            if (*f == '*') {
                sp.prec = va_arg(ap, int);
                f++;
            } else {
                while (*f >= '0' && *f <= '9')
                    sp.prec = sp.prec * 10 + (*f++ - '0');
            }
        }
        int longs = 0, ldbl = 0, size_t_arg = 0;
        while (*f == 'l' || *f == 'L' || *f == 'z' || *f == 'h') {
            if (*f == 'l')
                longs++;
            else if (*f == 'L')
                ldbl = 1;
            else if (*f == 'z')
                size_t_arg = 1;
            f++;
        }
        switch (*f) {
        case 'd':
        case 'i': {
            long long v = longs >= 2 ? va_arg(ap, long long)
                          : longs == 1 || size_t_arg ? va_arg(ap, long)
                                                     : va_arg(ap, int);
            unsigned long long mag = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
            integer(s, &sp, mag, v < 0, 10, 0);
            break;
        }
        case 'u':
        case 'x':
        case 'X':
        case 'o': {
            unsigned long long v = longs >= 2                  ? va_arg(ap, unsigned long long)
                                   : longs == 1 || size_t_arg ? va_arg(ap, unsigned long)
                                                              : va_arg(ap, unsigned int);
            unsigned base = *f == 'u' ? 10 : *f == 'o' ? 8 : 16;
            integer(s, &sp, v, 0, base, *f == 'X');
            break;
        }
        case 'p': {
            sp.alt = 1;
            integer(s, &sp, (unsigned long long)(uintptr_t)va_arg(ap, void *), 0, 16, 0);
            break;
        }
        case 'c': {
            char c = (char)va_arg(ap, int);
            field(s, &sp, "", &c, 1);
            break;
        }
        case 's': {
            const char *p = va_arg(ap, const char *);
            if (!p)
                p = "(null)";
            size_t n = strlen(p);
            if (sp.prec >= 0 && (size_t)sp.prec < n)
                n = (size_t)sp.prec;
            sp.zero = 0;
            field(s, &sp, "", p, n);
            break;
        }
        case 'f':
        case 'F':
        case 'e':
        case 'E':
        case 'g':
        case 'G':
            if (ldbl)
                fmt_ldouble(s, &sp, va_arg(ap, long double), *f);
            else
                fmt_double(s, &sp, va_arg(ap, double), *f);
            break;
        case '%':
            put(s, '%');
            break;
        default:
            put(s, '%');
            put(s, *f);
            if (!*f)
                return (int)s->len;
        }
    }
    return (int)s->len;
}

int rt_vprintf(const char *fmt, va_list ap)
{
    struct sink s = {0, 0, 0};
    return format(&s, fmt, ap);
}

int rt_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = rt_vprintf(fmt, ap);
    va_end(ap);
    return n;
}

int rt_snprintf(char *buf, size_t cap, const char *fmt, ...)
{
    struct sink s = {buf, cap, 0};
    va_list ap;
    va_start(ap, fmt);
    int n = format(&s, fmt, ap);
    va_end(ap);
    if (cap)
        buf[s.len < cap ? s.len : cap - 1] = 0;
    return n;
}

/* The string functions: plain loops, which the compiler vectorizes at -O2
 * (the build passes -fno-tree-loop-distribute-patterns so that it does not
 * turn them back into calls to themselves). */
void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++)
        d[i] = s[i];
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (d < s) {
        for (size_t i = 0; i < n; i++)
            d[i] = s[i];
    } else {
        for (size_t i = n; i > 0; i--)
            d[i - 1] = s[i - 1];
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++)
        d[i] = (unsigned char)c;
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return (unsigned char)*a - (unsigned char)*b;
}

char *strcpy(char *dst, const char *src)
{
    size_t i = 0;
    while ((dst[i] = src[i]))
        i++;
    return dst;
}

char *strcat(char *dst, const char *src)
{
    strcpy(dst + strlen(dst), src);
    return dst;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c)
            return (char *)s;
        if (!*s)
            return 0;
    }
}
