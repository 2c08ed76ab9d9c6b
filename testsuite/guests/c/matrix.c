/* A small matrix kernel: double and float products (vectorized by the
 * compiler), an LU decomposition with partial pivoting, a determinant and
 * a solve, printed row by row. */
#include "rt.h"

#define N 12

static double A[N][N], B[N][N], C[N][N];
static float FA[16][16], FB[16][16], FC[16][16];

static void matmul(void)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < N; k++)
                s += A[i][k] * B[k][j];
            C[i][j] = s;
        }
}

static void matmul_f(void)
{
    for (int i = 0; i < 16; i++) {
        for (int j = 0; j < 16; j++)
            FC[i][j] = 0;
        for (int k = 0; k < 16; k++)
            for (int j = 0; j < 16; j++)
                FC[i][j] += FA[i][k] * FB[k][j];
    }
}

/* LU with partial pivoting in place; returns the determinant. */
static double lu(double m[N][N], int perm[N])
{
    double det = 1;
    for (int i = 0; i < N; i++)
        perm[i] = i;
    for (int k = 0; k < N; k++) {
        int p = k;
        double best = m[k][k] < 0 ? -m[k][k] : m[k][k];
        for (int i = k + 1; i < N; i++) {
            double v = m[i][k] < 0 ? -m[i][k] : m[i][k];
            if (v > best) {
                best = v;
                p = i;
            }
        }
        if (p != k) {
            for (int j = 0; j < N; j++) {
                double t = m[k][j];
                m[k][j] = m[p][j];
                m[p][j] = t;
            }
            int t = perm[k];
            perm[k] = perm[p];
            perm[p] = t;
            det = -det;
        }
        det *= m[k][k];
        for (int i = k + 1; i < N; i++) {
            double f = m[i][k] / m[k][k];
            m[i][k] = f;
            for (int j = k + 1; j < N; j++)
                m[i][j] -= f * m[k][j];
        }
    }
    return det;
}

int test_main(void)
{
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            A[i][j] = (double)((i * 7 + j * 3) % 11) - 5 + 1.0 / (i + j + 1);
            B[i][j] = (i == j) ? 2.0 : ((i + 2 * j) % 5) * 0.25;
        }
    matmul();
    for (int i = 0; i < N; i++) {
        rt_printf("C[%2d]:", i);
        for (int j = 0; j < N; j++)
            rt_printf(" %9.5f", C[i][j]);
        rt_printf("\n");
    }
    for (int i = 0; i < 16; i++)
        for (int j = 0; j < 16; j++) {
            FA[i][j] = (float)((i ^ j) & 7) * 0.5f - 1.25f;
            FB[i][j] = (float)(i + j) / 16.0f;
        }
    matmul_f();
    float tr = 0;
    for (int i = 0; i < 16; i++)
        tr += FC[i][i];
    rt_printf("float trace %.9g FC[3][5] %.9g FC[15][0] %.9g\n", (double)tr, (double)FC[3][5],
              (double)FC[15][0]);
    static double M[N][N];
    memcpy(M, A, sizeof M);
    int perm[N];
    double det = lu(M, perm);
    rt_printf("det(A) = %.10e perm:", det);
    for (int i = 0; i < N; i++)
        rt_printf(" %d", perm[i]);
    rt_printf("\n");
    /* Solve A x = b for b = A * (1, 2, ..., N) and print x. */
    double b[N], x[N];
    for (int i = 0; i < N; i++) {
        b[i] = 0;
        for (int j = 0; j < N; j++)
            b[i] += A[i][j] * (j + 1);
    }
    for (int i = 0; i < N; i++) {
        double s = b[perm[i]];
        for (int j = 0; j < i; j++)
            s -= M[i][j] * x[j];
        x[i] = s;
    }
    for (int i = N - 1; i >= 0; i--) {
        double s = x[i];
        for (int j = i + 1; j < N; j++)
            s -= M[i][j] * x[j];
        x[i] = s / M[i][i];
    }
    rt_printf("x:");
    for (int i = 0; i < N; i++)
        rt_printf(" %.12f", x[i]);
    rt_printf("\n");
    return 0;
}
