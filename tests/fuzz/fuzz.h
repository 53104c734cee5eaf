/* Helpers shared by the libFuzzer targets: a cursor that splits one fuzz
 * input into the several values a target needs, so every input is usable
 * (running out of bytes yields zeros and empty strings, never a rejection),
 * and an assertion that aborts, so libFuzzer records the input. */
#ifndef PGCRAB_FUZZ_H
#define PGCRAB_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property of the code under test that must hold for every input; kept in
 * release-style builds too (no NDEBUG dependence). */
#define FUZZ_CHECK(cond)                                                                    \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: property failed: %s\n", __FILE__, __LINE__, \
				#cond);                                                     \
			abort();                                                            \
		}                                                                           \
	} while (0)

struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
	if (in->left == 0)
		return 0;
	in->left--;
	return *in->p++;
}

static inline uint16_t fuzz_u16(struct fuzz_in *in)
{
	uint16_t hi = fuzz_u8(in);
	return (uint16_t)(hi << 8 | fuzz_u8(in));
}

/* Up to n bytes (fewer when the input runs out); *got says how many. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t n, size_t *got)
{
	if (n > in->left)
		n = in->left;
	const uint8_t *p = in->p;
	in->p += n;
	in->left -= n;
	*got = n;
	return p;
}

/* The next string: bytes up to a NUL (or the end), copied into out (cap
 * includes the NUL) and cut at cap - 1. Mutations of "...\0...\0" inputs
 * thus move naturally between fields. */
static inline char *fuzz_cstr(struct fuzz_in *in, char *out, size_t cap)
{
	size_t n = 0;
	while (in->left > 0) {
		uint8_t c = fuzz_u8(in);
		if (c == 0)
			break;
		if (n + 1 < cap)
			out[n++] = (char)c;
	}
	out[n] = '\0';
	return out;
}

/* A heap copy of exactly n bytes, so ASan catches a read one past the end
 * (libFuzzer's own buffer is exact too, but slices of it are not). */
static inline uint8_t *fuzz_dup(const uint8_t *p, size_t n)
{
	uint8_t *d = malloc(n ? n : 1);
	if (!d)
		abort();
	if (n)
		memcpy(d, p, n);
	return d;
}

#endif
