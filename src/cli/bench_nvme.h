/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * `vfio-dext bench nvme`: the unvme driver against an in-process sim:nvme
 * (local transport, 1 GiB in RAM, 4 queue pairs). See bench_nvme.c.
 */
#ifndef VFIO_DEXT_CLI_BENCH_NVME_H
#define VFIO_DEXT_CLI_BENCH_NVME_H

/*
 * Run the benchmark. argv[0] is the benchmark's name ("nvme"), then its
 * options: [--json] [--seconds S] [--help]. Prints the results on stdout and
 * any error once on stderr. Returns a CLI exit code: 0 measured and every
 * byte read back verified (goals missed are reported, not failures), 1 a
 * phase could not run or data did not verify, 2 usage error.
 */
int vdx_bench_nvme_main(int argc, char **argv);

#endif /* VFIO_DEXT_CLI_BENCH_NVME_H */
