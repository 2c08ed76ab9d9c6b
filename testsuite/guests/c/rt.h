/* The small runtime the C guests share: output, exit, a printf with
 * %f/%e/%g (also for long double), and the string functions the compiler
 * emits calls to. The same code is built into the guest (output to COM1,
 * exit through port 0xf4) and into a host program (write(2), _exit), so
 * the host's run is the expected output of the guest's. */
#ifndef RT_H
#define RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Provided by the shim: guest_shim.c or host_shim.c. */
void rt_putc(char c);
void rt_exit(int code) __attribute__((noreturn));

int rt_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int rt_vprintf(const char *fmt, va_list ap);
int rt_snprintf(char *buf, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
char *strcpy(char *dst, const char *src);
char *strcat(char *dst, const char *src);
char *strchr(const char *s, int c);

/* The program: returns the exit code. */
int test_main(void);

#endif
