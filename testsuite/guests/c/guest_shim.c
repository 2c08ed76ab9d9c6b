/* The guest side of rt.h. entry.S runs kmain in ring 3 of long mode, where
 * port I/O is not allowed: the output is collected here, and rt_exit ends
 * with a UD2 at rt_exit_trap, after which ring 0 writes the output to COM1
 * and the exit code to the isa-debug-exit port 0xf4 (see entry.S). */
#include "rt.h"

/* Read by entry.S. */
#define RT_OUT_CAP (1 << 20)
char rt_out_buf[RT_OUT_CAP];
unsigned long rt_out_len;
int rt_exit_code;
__asm__(".globl rt_out_cap\n.set rt_out_cap, 1 << 20");

void rt_putc(char c)
{
    if (rt_out_len < RT_OUT_CAP)
        rt_out_buf[rt_out_len] = c;
    rt_out_len++;
}

void rt_exit(int code)
{
    rt_exit_code = code;
    for (;;)
        __asm__ volatile(".globl rt_exit_trap\nrt_exit_trap: ud2" : : : "memory");
}

void kmain(void)
{
    rt_exit(test_main());
}
