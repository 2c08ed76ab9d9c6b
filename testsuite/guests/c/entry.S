/* Multiboot entry of the C guests. Starts in 32-bit protected mode (the
 * multiboot contract), builds identity page tables for the first 1 GiB
 * (2 MiB pages, user-accessible), enables the FPU and SSE (CR0.MP and NE
 * set, EM and TS clear; CR4.OSFXSR and OSXMMEXCPT), enters long mode,
 * loads a GDT, a TSS and an IDT, and runs kmain in ring 3. Ring 3 matters
 * for the /dev/kvm comparison: on nested KVM, ring 0 code goes through
 * KVM's instruction emulator, which lacks SSE, while ring 3 runs natively.
 *
 * Ring 3 cannot do port I/O, and nested KVM turns INT n in ring 3 into
 * #UD, so ring 3 collects its output in rt_out_buf (guest_shim.c) and ends
 * with a UD2 at rt_exit_trap. Every exception lands in ring 0, which writes
 * the collected output to COM1 and then, for that UD2, rt_exit_code to the
 * exit port 0xf4; any other exception prints "exception NN" and the two
 * words on top of the stack and exits with 0x100 + NN. */

#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003

#define KCODE 0x08
#define KDATA 0x10
#define UDATA 0x1b
#define UCODE 0x23
#define TSSSEL 0x28

    .section .multiboot, "a"
    .align 4
    .long MB_MAGIC
    .long MB_FLAGS
    .long -(MB_MAGIC + MB_FLAGS)

    .section .text.boot, "ax"
    .code32
    .globl _start
_start:
    cli
    movl $kstack_top, %esp

    /* PML4[0] -> PDPT, PDPT[0] -> PD, PD[i] = i * 2 MiB: present,
     * writable, user, large. The tables are in .bss, zeroed by the loader. */
    movl $pdpt, %eax
    orl $7, %eax
    movl %eax, pml4
    movl $pd, %eax
    orl $7, %eax
    movl %eax, pdpt
    xorl %ecx, %ecx
1:  movl %ecx, %eax
    shll $21, %eax
    orl $0x87, %eax
    movl %eax, pd(,%ecx,8)
    incl %ecx
    cmpl $512, %ecx
    jne 1b

    movl %cr4, %eax
    orl $0x620, %eax            /* PAE, OSFXSR, OSXMMEXCPT */
    movl %eax, %cr4
    movl $pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx      /* EFER.LME */
    rdmsr
    orl $0x100, %eax
    wrmsr
    movl %cr0, %eax
    andl $~0xC, %eax            /* EM, TS clear */
    orl $0x80000022, %eax       /* PG, NE, MP */
    movl %eax, %cr0
    lgdt gdt_desc
    ljmp $KCODE, $long_entry

    .code64
long_entry:
    movw $KDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movq $kstack_top, %rsp

    /* The TSS descriptor (base in two halves) and RSP0. */
    movq $tss, %rax
    movw %ax, gdt_tss + 2
    shrq $16, %rax
    movb %al, gdt_tss + 4
    movb %ah, gdt_tss + 7
    shrq $16, %rax
    movl %eax, gdt_tss + 8
    movq $kstack_top, %rax
    movq %rax, tss + 4
    movw $TSSSEL, %ax
    ltr %ax

    /* IDT: vectors 0..31 to their stubs. */
    xorl %ecx, %ecx
2:  movq exc_stubs(,%rcx,8), %rax
    movq %rcx, %rdi
    call set_gate
    incl %ecx
    cmpl $32, %ecx
    jne 2b
    lidt idt_desc

    /* Ring 3. */
    pushq $UDATA
    pushq $ustack_top
    pushq $0x2
    pushq $UCODE
    pushq $user_entry
    iretq

/* Interrupt gate for vector RDI to the handler at RAX. */
set_gate:
    shlq $4, %rdi
    movw %ax, idt(%rdi)
    movw $KCODE, idt + 2(%rdi)
    movw $0x8e00, idt + 4(%rdi)
    shrq $16, %rax
    movw %ax, idt + 6(%rdi)
    shrq $16, %rax
    movl %eax, idt + 8(%rdi)
    movl $0, idt + 12(%rdi)
    ret

user_entry:
    movw $UDATA, %ax
    movw %ax, %ds
    movw %ax, %es
    /* The x87 and SSE state after FNINIT with MXCSR at its reset value
     * (one FXRSTOR, so that programs without x87 code need no x87). */
    fxrstor64 fx_init
    call kmain
    ud2

/* Exception stubs: push the vector, print it, exit 0x100 + vector. */
    .macro exc n
exc_\n:
    movl $\n, %ebx
    jmp exception
    .endm
    .altmacro
    .set i, 0
    .rept 32
    exc %i
    .set i, i + 1
    .endr

exception:
    /* The output ring 3 collected. */
    movw $0x3f8, %dx
    movq $rt_out_buf, %rsi
    movq rt_out_len, %rcx
    cmpq $rt_out_cap, %rcx
    jbe 8f
    movq $rt_out_cap, %rcx
8:  jrcxz 9f
    rep outsb
9:  cmpl $6, %ebx
    jne 10f
    movq (%rsp), %rax
    cmpq $rt_exit_trap, %rax
    jne 10f
    movl rt_exit_code, %eax
    jmp exit_port
10: leaq exc_text(%rip), %rsi
3:  lodsb
    testb %al, %al
    jz 4f
    outb %al, %dx
    jmp 3b
4:  movl %ebx, %eax
    shrl $4, %eax
    call hexdigit
    movl %ebx, %eax
    call hexdigit
    /* The two words on top of the stack: the error code or RIP, then
     * RIP or CS. */
    movq (%rsp), %rdi
    call hex64
    movq 8(%rsp), %rdi
    call hex64
    movb $10, %al
    outb %al, %dx
    leal 0x100(%rbx), %eax
exit_port:
    movw $0xf4, %dx
    outl %eax, %dx
7:  cli
    hlt
    jmp 7b

/* " " and RDI as 16 hex digits. */
hex64:
    movb $' ', %al
    outb %al, %dx
    movl $60, %ecx
6:  movq %rdi, %rax
    shrq %cl, %rax
    call hexdigit
    subl $4, %ecx
    jns 6b
    ret

hexdigit:
    andl $15, %eax
    addb $'0', %al
    cmpb $'9', %al
    jbe 5f
    addb $7, %al
5:  outb %al, %dx
    ret

    .section .rodata
    .align 8
    .macro excaddr n
    .quad exc_\n
    .endm
exc_stubs:
    .set i, 0
    .rept 32
    excaddr %i
    .set i, i + 1
    .endr
exc_text:
    .asciz "exception "

    .section .data
    .align 16
/* FXSAVE image: FCW 0x37f, every register empty, MXCSR 0x1f80. */
fx_init:
    .word 0x037f
    .skip 22
    .long 0x1f80
    .skip 512 - 28
gdt:
    .quad 0
    .quad 0x00af9a000000ffff    /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff    /* 0x10: data, DPL 0 */
    .quad 0x00cff2000000ffff    /* 0x18: data, DPL 3 */
    .quad 0x00affa000000ffff    /* 0x20: 64-bit code, DPL 3 */
gdt_tss:
    .quad 0x0000890000000067    /* 0x28: 64-bit TSS, base filled in */
    .quad 0
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .quad gdt
idt_desc:
    .word 256 * 16 - 1
    .quad idt

    .section .bss
    .align 4096
pml4:
    .skip 4096
pdpt:
    .skip 4096
pd:
    .skip 4096
idt:
    .skip 4096
    .align 16
tss:
    .skip 104
    .align 16
    .skip 16384
kstack_top:
    .skip 65536
ustack_top:

    .section .note.GNU-stack, "", @progbits
