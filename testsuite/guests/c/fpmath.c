/* Float and double arithmetic as compiled code does it: series, Newton
 * iterations, conversions both ways, rounding of halves and negatives,
 * denormals, infinities and NaNs, comparisons, and the results printed
 * with %f, %e and %g (rt.c formats them with the FPU too). */
#include "rt.h"

/* Values the compiler cannot fold: read through a volatile. */
static volatile double vd[] = {0.1, -2.5, 1e308, 4.9e-324, 3.0, 0.0, -0.0, 1e-310, 7.0};
static volatile float vf[] = {0.1f, -2.5f, 3.4e38f, 1.4e-45f, 3.0f, 1e-40f, 16777217.0f};

static uint64_t bits_d(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static uint32_t bits_f(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static double machin_pi(void)
{
    /* pi = 16 atan(1/5) - 4 atan(1/239), atan by its series. */
    double a = 0, b = 0, p5 = 1.0 / 5, p239 = 1.0 / 239;
    for (int k = 0; k < 30; k++) {
        double s = (k & 1) ? -1.0 : 1.0;
        a += s * p5 / (2 * k + 1);
        b += s * p239 / (2 * k + 1);
        p5 /= 25;
        p239 /= 239.0 * 239.0;
    }
    return 16 * a - 4 * b;
}

static double newton_sqrt(double x)
{
    double g = x > 1 ? x / 2 : 1;
    for (int i = 0; i < 60; i++)
        g = 0.5 * (g + x / g);
    return g;
}

static float harmonic_f(int n)
{
    float s = 0;
    for (int i = 1; i <= n; i++)
        s += 1.0f / (float)i;
    return s;
}

static double kahan(int n)
{
    double s = 0, c = 0;
    for (int i = 1; i <= n; i++) {
        double y = 1.0 / ((double)i * i) - c;
        double t = s + y;
        c = (t - s) - y;
        s = t;
    }
    return s;
}

static double exp_series(double x)
{
    double term = 1, sum = 1;
    for (int k = 1; k < 40; k++) {
        term *= x / k;
        sum += term;
    }
    return sum;
}

int test_main(void)
{
    rt_printf("pi (Machin) = %.15f\n", machin_pi());
    rt_printf("pi %%e %.10e %%g %g %%G %G\n", machin_pi(), machin_pi(), machin_pi() * 1e20);
    for (int i = 0; i < 9; i++) {
        double x = vd[i];
        rt_printf("d[%d] = %g bits %016llx  x*3=%g x/3=%.17g -x=%g\n", i, x,
                  (unsigned long long)bits_d(x), x * 3, x / 3, -x);
    }
    for (int i = 0; i < 7; i++) {
        float f = vf[i];
        rt_printf("f[%d] = %.9g bits %08x  f*f=%g (double)f=%.17g\n", i, (double)f, bits_f(f),
                  (double)(f * f), (double)f);
    }
    rt_printf("sqrt: %.17g %.17g %.17g\n", newton_sqrt(2), __builtin_sqrt(vd[6 + 2]),
              (double)__builtin_sqrtf(vf[4]));
    rt_printf("sqrt(-1) is nan: %d, 1/0 = %g, -1/0 = %g, 0/0 != itself: %d\n",
              __builtin_sqrt(-vd[4]) != __builtin_sqrt(-vd[4]), vd[4] / vd[5], -vd[4] / vd[5],
              vd[5] / vd[5] != vd[5] / vd[5]);
    rt_printf("harmonic(1e5) float %.9g double kahan zeta(2) %.17g\n", (double)harmonic_f(100000),
              kahan(100000));
    rt_printf("exp(1) %.17g exp(-10) %.17e exp(20) %.17g\n", exp_series(1), exp_series(-10),
              exp_series(20));
    /* Conversions: truncation toward zero, halves, out of range. */
    double conv[] = {2.5, -2.5, 3.5, -3.7, 1e10, -1e10, 0.49999999999999994, 9.2e18, -0.0};
    for (int i = 0; i < 9; i++) {
        double x = conv[i] + vd[5];
        long long l = (long long)x;
        int n = (int)(float)x;
        unsigned u = (unsigned)(x < 0 ? -x : x) & 0xffff;
        rt_printf("conv %g -> ll %lld int(float) %d u %u float %.9g\n", x, l, n, u,
                  (double)(float)x);
    }
    /* Integer to floating point, including the values that round. */
    long long ints[] = {0, 1, -1, 16777217, 9007199254740993LL, -9223372036854775807LL - 1,
                        9223372036854775807LL};
    for (int i = 0; i < 7; i++) {
        volatile long long v = ints[i];
        unsigned long long uv = (unsigned long long)v;
        rt_printf("ll %lld -> double %.17g float %.9g; ull -> double %.17g\n", (long long)v,
                  (double)v, (double)(float)v, (double)uv);
    }
    /* Denormals: gradual underflow and back. */
    double d = 1e-300;
    for (int i = 0; i < 6; i++) {
        d *= 1e-5;
        rt_printf("underflow %d: %e (bits %016llx)\n", i, d, (unsigned long long)bits_d(d));
    }
    float fd = 1e-36f;
    for (int i = 0; i < 5; i++) {
        fd /= 7;
        rt_printf("float underflow %d: %.9e\n", i, (double)fd);
    }
    /* Comparisons with NaN and signed zeros. */
    double nan = vd[5] / vd[5], pz = vd[5], nz = vd[6];
    rt_printf("nan<1 %d nan>1 %d nan==nan %d 0==-0 %d 1/-0 %g min %g max %g\n", nan < 1, nan > 1,
              nan == nan, pz == nz, 1 / nz, pz < nz ? pz : nz, nz > pz ? nz : pz);
    /* Float arithmetic that rounds. */
    float a = 1.0f, b = 1e-8f;
    rt_printf("1+1e-8 float %.9g, 16777216+1 %.9g, 0.1+0.2 double %.17g\n", (double)(a + b),
              (double)(16777216.0f + vf[0] * 10), 0.1 + vd[0] * 2);
    /* %f with many widths and precisions. */
    double vals[] = {0, 1, -1, 0.5, 123.456, -0.001234, 1e15, 2.5e-7, 99.995};
    for (int i = 0; i < 9; i++)
        rt_printf("[%10.3f] [%-12.2e] [%+g] [%08.2f] [%.0f] [%#.0e] [%.12g]\n", vals[i], vals[i],
                  vals[i], vals[i], vals[i], vals[i], vals[i]);
    char buf[64];
    rt_snprintf(buf, sizeof buf, "%.5f|%e", 1.0 / 7, -1e-7);
    rt_printf("snprintf: %s (%d chars)\n", buf, (int)strlen(buf));
    return 0;
}
