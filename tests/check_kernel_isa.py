#!/usr/bin/python3
"""The x86-64-v3 kernel tests run the non-AVX-512 code: in every kernels_*_v3 test executable,
no function of namespace kdgrid::cpu (the kernels, their references and the inline helpers of
kernels/cpu/simd.h and kernels/cpu/detail/, wherever the linker took them from) uses an AVX-512
register (zmm, or an opmask k1-k7 as a write mask), while the same functions do use AVX2 (ymm):
the portable branches were compiled, vectorised, and no natively built copy was linked in.

When the native kernel tests were built for a CPU with AVX-512 (--native-avx512), their
kdgrid::cpu functions must use zmm: the check sees AVX-512 code where there is some.

usage: check_kernel_isa.py OBJDUMP V3_TEST... [--native-avx512 NATIVE_TEST]
"""
import re
import subprocess
import sys

FUNCTION = re.compile(r"^[0-9a-f]+ <(.*)>:$")
AVX512 = re.compile(r"%zmm\d+|\{%k[1-7]\}")
YMM = re.compile(r"%ymm\d+")


def kernel_functions(objdump, binary):
    """{demangled name: [instruction lines]} for the kdgrid::cpu functions of binary."""
    out = subprocess.run([objdump, "-d", "-C", "--no-show-raw-insn", binary], check=True,
                         capture_output=True, text=True).stdout
    functions, current = {}, None
    for line in out.splitlines():
        m = FUNCTION.match(line)
        if m:
            current = m.group(1) if "kdgrid::cpu::" in m.group(1) else None
            if current is not None:
                functions.setdefault(current, [])
        elif current is not None and line.strip():
            functions[current].append(line)
    return functions


def main(argv):
    objdump, rest = argv[1], argv[2:]
    native = None
    if "--native-avx512" in rest:
        i = rest.index("--native-avx512")
        native = rest[i + 1]
        rest = rest[:i] + rest[i + 2:]
    failures = []
    for binary in rest:
        functions = kernel_functions(objdump, binary)
        if not functions:
            failures.append(f"{binary}: no kdgrid::cpu functions found")
            continue
        avx512 = sorted(n for n, lines in functions.items() if any(AVX512.search(l) for l in lines))
        for name in avx512[:5]:
            failures.append(f"{binary}: {name} uses AVX-512 registers")
        if len(avx512) > 5:
            failures.append(f"{binary}: ... and {len(avx512) - 5} more functions")
        if not any(YMM.search(l) for lines in functions.values() for l in lines):
            failures.append(f"{binary}: no kdgrid::cpu function uses ymm (not vectorised?)")
        print(f"{binary}: {len(functions)} kdgrid::cpu functions, {len(avx512)} with AVX-512")
    if native is not None:
        functions = kernel_functions(objdump, native)
        n = sum(1 for lines in functions.values() if any(AVX512.search(l) for l in lines))
        print(f"{native} (native): {len(functions)} kdgrid::cpu functions, {n} with AVX-512")
        if n == 0:
            failures.append(f"{native}: built for an AVX-512 CPU, yet no kdgrid::cpu function "
                            "uses zmm: the check would not see AVX-512 code")
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
