/* x87 extended precision through long double: factorials, series, sqrtl,
 * conversions to and from 64-bit integers, compares, and the x87
 * precision and rounding controls changed with FLDCW. */
#include "rt.h"

static volatile long double vl[] = {0.1L, -2.5L, 1e4000L, 3.6e-4951L, 3.0L, 0.0L, 1e-4940L};

static void show_bits(const char *what, long double x)
{
    unsigned char b[16] = {0};
    memcpy(b, &x, 10);
    rt_printf("%s %Lg = %02x%02x:", what, x, b[9], b[8]);
    for (int i = 7; i >= 0; i--)
        rt_printf("%02x", b[i]);
    rt_printf("\n");
}

static unsigned short get_cw(void)
{
    unsigned short cw;
    __asm__ volatile("fnstcw %0" : "=m"(cw));
    return cw;
}

static void set_cw(unsigned short cw)
{
    __asm__ volatile("fldcw %0" : : "m"(cw) : "memory");
}

static long double sum_inverse(int n)
{
    long double s = 0;
    for (int i = n; i >= 1; i--)
        s += 1.0L / i;
    return s;
}

int test_main(void)
{
    long double f = 1;
    for (int i = 1; i <= 25; i++) {
        f *= i;
        if (i % 5 == 0)
            rt_printf("%d! = %.0Lf (%Le)\n", i, f, f);
    }
    for (int i = 0; i < 7; i++)
        show_bits("vl", vl[i]);
    long double e = 0, t = 1;
    for (int k = 1; k < 30; k++) {
        e += t;
        t /= k;
    }
    rt_printf("e = %.17Lf\n", e);
    show_bits("e", e);
    rt_printf("sqrtl(2) = %.17Lg\n", __builtin_sqrtl(2.0L + vl[5]));
    show_bits("sqrtl(2)", __builtin_sqrtl(2.0L + vl[5]));
    rt_printf("H(1000) = %.17Lg\n", sum_inverse(1000));
    show_bits("H(1000)", sum_inverse(1000));
    /* Conversions to and from 64-bit integers. */
    long long ll[] = {0, 1, -1, 9007199254740993LL, -9223372036854775807LL - 1,
                      9223372036854775807LL};
    for (int i = 0; i < 6; i++) {
        long double x = (long double)ll[i] + vl[5];
        rt_printf("ll %lld -> %.0Lf -> %lld, /3 = %.6Lf\n", ll[i], x, (long long)x, x / 3);
    }
    long double cv[] = {2.5L, -2.5L, 1e19L, -0.75L, 123456789.987654321L};
    for (int i = 0; i < 5; i++)
        rt_printf("(long long)%Lg = %lld, (double) = %.17g, (float) = %.9g\n", cv[i],
                  (long long)cv[i], (double)cv[i], (double)(float)cv[i]);
    /* Compares. */
    long double nan = vl[5] / vl[5];
    rt_printf("nan<1 %d 1<2 %d -0==0 %d inf>max %d\n", nan < 1, vl[4] < 4, -vl[5] == vl[5],
              vl[2] > 1e300L);
    /* Precision control: the same division in single, double, extended. */
    unsigned short cw = get_cw();
    rt_printf("fcw %04x\n", cw);
    const char *names[] = {"single", "double", "extended"};
    unsigned short pcs[] = {0x000, 0x200, 0x300};
    for (int i = 0; i < 3; i++) {
        set_cw((unsigned short)((cw & ~0x300) | pcs[i]));
        volatile long double q = vl[4];
        volatile long double r = 1.0L / q;
        set_cw(cw);
        show_bits(names[i], r);
    }
    /* Rounding control: 2/3 rounded four ways, and the integer stores. */
    const char *rc[] = {"nearest", "down", "up", "zero"};
    for (int i = 0; i < 4; i++) {
        set_cw((unsigned short)((cw & ~0xc00) | (i << 10)));
        volatile long double two = 2, m = -7.5L;
        volatile long double r = two / vl[4];
        long long n;
        __asm__ volatile("fistpll %0" : "=m"(n) : "t"(m) : "st");
        set_cw(cw);
        show_bits(rc[i], r);
        rt_printf("  fistp(-7.5) %s = %lld\n", rc[i], n);
    }
    return 0;
}
