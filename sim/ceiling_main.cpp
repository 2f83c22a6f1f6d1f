// The bare Verilator main of the simulation-speed ceiling (sim/ceiling.py): no cocotb, no VPI, no Verilog
// harness. It drives the array top directly, the same protocol the cocotb harness (sim/wrapper.py) plays:
// reset for 2 cycles, the program of a hex file one load-port word per cycle, a one-cycle start pulse, the
// clock until done, then every output word back through out_addr/out_data. The job is repeated until the
// compute phases (start..done) took min_seconds; every repeat must give the same counters and outputs.
//
// usage: ceiling PROG_HEX OUT_LEN MAX_CYCLES MIN_SECONDS MIN_RUNS OUT_HEX [EXPECT_CYCLES]
// prints one JSON object on stdout; the first run's output words go to OUT_HEX (one hex word per line).
// With EXPECT_CYCLES (our harness's / the model's `cycles` counter) a run whose counter differs ends the
// program with exit 3 and a one-line message: the ceiling must measure the same work.
// ceiling_ports.h (written by sim/ceiling.py) gives the port widths, the counters and the tied-off inputs.

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "Vtop.h"
#include "ceiling_ports.h"
#include "verilated.h"

namespace {

using Bits = std::vector<uint32_t>;  // a value as 32-bit words, least significant first
using Clock = std::chrono::steady_clock;

Bits parse_hex(const std::string& text) {
    Bits out;
    int shift = 0;
    for (auto it = text.rbegin(); it != text.rend(); ++it) {
        const char c = *it;
        uint32_t v;
        if (c >= '0' && c <= '9') v = c - '0';
        else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
        else continue;  // line ends, spaces
        if (shift == 0) out.push_back(0);
        out.back() |= v << shift;
        shift = (shift + 4) % 32;
    }
    return out;
}

uint64_t field(const Bits& w, int lo, int width) {  // bits [lo, lo + width) of w, width <= 64
    uint64_t v = 0;
    for (int got = 0; got < width;) {
        const int b = lo + got, off = b % 32, take = std::min(32 - off, width - got);
        const size_t i = b / 32;
        const uint64_t chunk = i < w.size() ? (w[i] >> off) & ((uint64_t{1} << take) - 1) : 0;
        v |= chunk << got;
        got += take;
    }
    return v;
}

double cpu_seconds() {  // CPU time of this process: what the simulation cost, whatever else the machine runs
    timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

template <typename T>
void put(T& port, const Bits& w, int lo, int width) {
    if constexpr (VlIsVlWide<T>::value) {
        for (size_t i = 0; i < T::Words; ++i) {
            const int left = width - 32 * static_cast<int>(i);
            port.at(i) = left > 0 ? static_cast<uint32_t>(field(w, lo + 32 * i, left < 32 ? left : 32)) : 0;
        }
    } else {
        port = static_cast<T>(field(w, lo, width));
    }
}

template <typename T>
std::string hex(const T& port) {
    char buf[24];
    if constexpr (VlIsVlWide<T>::value) {
        std::string s;
        for (size_t i = T::Words; i-- > 0;) {
            std::snprintf(buf, sizeof buf, s.empty() ? "%" PRIx32 : "%08" PRIx32, port.at(i));
            if (!(s.empty() && port.at(i) == 0 && i > 0)) s += buf;
        }
        return s;
    } else {
        std::snprintf(buf, sizeof buf, "%" PRIx64, static_cast<uint64_t>(port));
        return buf;
    }
}

std::vector<Bits> read_program(const char* path) {
    std::ifstream in(path);
    if (!in) {
        std::fprintf(stderr, "ceiling: cannot read program %s\n", path);
        std::exit(2);
    }
    std::vector<Bits> prog;
    for (std::string line; std::getline(in, line);) {
        if (line.find_first_not_of(" \t\r") != std::string::npos) prog.push_back(parse_hex(line));
    }
    return prog;
}

struct Run {
    bool timeout = false;
    uint64_t job_cycles = 0, compute_cycles = 0;
    double job_seconds = 0, compute_seconds = 0, job_cpu_seconds = 0, compute_cpu_seconds = 0;
    uint64_t cycles = 0;   // the design's cycles counter after the run
    std::string counters;  // JSON object body
    std::vector<std::string> outs;
};

class Bench {
  public:
    Bench() : ctx_(new VerilatedContext), top_(new Vtop(ctx_.get(), "")) {
#define DPP_TIE(name) top_->name = 0;
        DPP_TIED_INPUTS(DPP_TIE)
#undef DPP_TIE
        top_->clk = 0;
        top_->rst = 1;
        top_->load_en = 0;
        top_->start = 0;
        top_->out_addr = 0;
        top_->eval();
    }
    ~Bench() { top_->final(); }

    // One job: reset, load, start, run until done (or max_cycles), read the outputs back.
    Run job(const char* prog_path, uint64_t out_len, uint64_t max_cycles) {
        Run r;
        const auto t0 = Clock::now();
        const double p0 = cpu_seconds();
        const uint64_t c0 = cycles_;
        const std::vector<Bits> prog = read_program(prog_path);
        top_->rst = 1;
        tick();
        tick();
        top_->rst = 0;
        for (const Bits& word : prog) {
            put(top_->load_data, word, 0, DPP_DATA_BITS);
            put(top_->load_addr, word, DPP_DATA_BITS, DPP_ADDR_BITS);
            put(top_->load_sel, word, DPP_DATA_BITS + DPP_ADDR_BITS, DPP_SEL_BITS);
            top_->load_en = 1;
            tick();
        }
        top_->load_en = 0;
        const auto t1 = Clock::now();
        const double p1 = cpu_seconds();
        const uint64_t c1 = cycles_;
        top_->start = 1;
        tick();
        top_->start = 0;
        while (!top_->done) {
            if (cycles_ - c1 >= max_cycles) {
                r.timeout = true;
                break;
            }
            tick();
        }
        r.compute_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
        r.compute_cpu_seconds = cpu_seconds() - p1;
        r.compute_cycles = cycles_ - c1;
        if (!r.timeout) read_outputs(out_len, r);
        r.counters = counters();
#ifdef DPP_CYCLES
        r.cycles = static_cast<uint64_t>(top_->DPP_CYCLES);
#endif
        r.job_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
        r.job_cpu_seconds = cpu_seconds() - p0;
        r.job_cycles = cycles_ - c0;
        return r;
    }

  private:
    void tick() {
        top_->clk = 1;
        top_->eval();
        ctx_->timeInc(5);
        top_->clk = 0;
        top_->eval();
        ctx_->timeInc(5);
        ++cycles_;
    }

    // out_data shows the word at out_addr DPP_OUT_LATENCY rising edges later.
    void read_outputs(uint64_t out_len, Run& r) {
        if constexpr (DPP_OUT_LATENCY == 0) {
            for (uint64_t i = 0; i < out_len; ++i) {
                top_->out_addr = i;
                top_->eval();
                r.outs.push_back(hex(top_->out_data));
            }
        } else {
            for (uint64_t i = 0; i + 1 < out_len + DPP_OUT_LATENCY; ++i) {
                if (i < out_len) top_->out_addr = i;
                tick();
                if (i + 1 >= DPP_OUT_LATENCY) r.outs.push_back(hex(top_->out_data));  // word i + 1 - latency
            }
        }
    }

    std::string counters() {
        std::string s;
#define DPP_COUNTER(name) s += std::string(s.empty() ? "" : ", ") + "\"" #name "\": \"" + hex(top_->name) + "\"";
        DPP_COUNTERS(DPP_COUNTER)
#undef DPP_COUNTER
        return s;
    }

    std::unique_ptr<VerilatedContext> ctx_;
    std::unique_ptr<Vtop> top_;
    uint64_t cycles_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 7 && argc != 8) {
        std::fprintf(stderr, "usage: %s PROG_HEX OUT_LEN MAX_CYCLES MIN_SECONDS MIN_RUNS OUT_HEX [EXPECT_CYCLES]\n",
                     argv[0]);
        return 2;
    }
    const uint64_t out_len = std::strtoull(argv[2], nullptr, 10);
    const uint64_t max_cycles = std::strtoull(argv[3], nullptr, 10);
    const double min_seconds = std::strtod(argv[4], nullptr);
    const uint64_t min_runs = std::strtoull(argv[5], nullptr, 10);
#ifndef DPP_CYCLES
    if (argc == 8) {
        std::fprintf(stderr, "ceiling: EXPECT_CYCLES given but the design has no cycles counter\n");
        return 2;
    }
#endif
    Bench bench;
    Run first, total;
    uint64_t runs = 0;
    bool same = true;
    double best = 0;
    while (runs < min_runs || total.compute_seconds < min_seconds) {
        Run r = bench.job(argv[1], out_len, max_cycles);
#ifdef DPP_CYCLES
        if (argc == 8 && !r.timeout && r.cycles != std::strtoull(argv[7], nullptr, 10)) {
            std::fprintf(stderr, "ceiling: cycles counter %" PRIu64 ", expected %s (run %" PRIu64 ")\n", r.cycles,
                         argv[7], runs);
            return 3;
        }
#endif
        if (runs == 0) first = r;
        else same = same && r.counters == first.counters && r.outs == first.outs;
        ++runs;
        total.job_cycles += r.job_cycles;
        total.job_seconds += r.job_seconds;
        total.compute_cycles += r.compute_cycles;
        total.compute_seconds += r.compute_seconds;
        total.job_cpu_seconds += r.job_cpu_seconds;
        total.compute_cpu_seconds += r.compute_cpu_seconds;
        if (r.compute_seconds > 0 && r.compute_cycles / r.compute_seconds > best) best = r.compute_cycles / r.compute_seconds;
        if (r.timeout) break;
    }
    if (!first.timeout) {
        std::FILE* out = std::fopen(argv[6], "w");
        if (!out) {
            std::fprintf(stderr, "ceiling: cannot write %s\n", argv[6]);
            return 2;
        }
        for (const std::string& w : first.outs) std::fprintf(out, "%s\n", w.c_str());
        std::fclose(out);
    }
    std::printf("{\"runs\": %" PRIu64 ", \"timeout\": %s, \"runs_agree\": %s, \"counters\": {%s}, "
                "\"compute_cycles_per_run\": %" PRIu64 ", \"compute_cycles\": %" PRIu64 ", \"compute_seconds\": %.9f, "
                "\"job_cycles\": %" PRIu64 ", \"job_seconds\": %.9f, \"compute_cpu_seconds\": %.9f, \"job_cpu_seconds\": %.9f, "
                "\"best_compute_cycles_per_second\": %.3f}\n",
                runs, first.timeout ? "true" : "false", same ? "true" : "false", first.counters.c_str(),
                first.compute_cycles, total.compute_cycles, total.compute_seconds, total.job_cycles,
                total.job_seconds, total.compute_cpu_seconds, total.job_cpu_seconds, best);
    return 0;
}
