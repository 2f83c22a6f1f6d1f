// The Verilator main of the cocotb harness: sim/build.py builds it in place of cocotb's verilator.cpp.
//
// cocotb's event loop (cocotb share/lib/verilator/verilator.cpp, Copyright cocotb contributors, BSD-3-Clause)
// with two changes, both for speed (sim/README.md has the measurements):
// - the harness clock (the clk input of dpp_tb, see sim/wrapper.py) toggles here, every half period, instead
//   of in a Verilog `always #5`, which Verilator (--timing) runs as a coroutine resumed through its delay queue
//   on every edge;
// - a callback list that called nothing changed no signal, so the value-change checks after it are skipped,
//   and the timed callbacks are only called when one is due: most time steps are bare clock edges.
// cocotb's coverage options are left out (not used here); VCD tracing (--trace, --trace-file) is kept.

#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>

#include "Vtop.h"
#include "verilated.h"
#include "verilated_vpi.h"

#if VM_TRACE
#include <verilated_vcd_c.h>
static VerilatedVcdC* tfp = nullptr;
#endif

static constexpr uint64_t kHalfPeriodNs = 5;  // 10 ns per cycle, as the harness always had (sim/build.py TIMESCALE)

static uint64_t main_time = 0;

double sc_time_stamp() { return static_cast<double>(main_time); }

extern "C" {
void vlog_startup_routines_bootstrap(void);
}

// Value-change callbacks can change signals, so call them until none fires.
static void settle_value_callbacks() {
    while (VerilatedVpi::callValueCbs()) {
    }
}

static void wrap_up() {
    VerilatedVpi::callCbs(cbEndOfSimulation);
#if VM_TRACE
    if (tfp) tfp->close();
#endif
}

// Half clock period in units of the time precision (5 ns at 1 ps = 5000); the precision is 1 ns or finer.
static uint64_t half_period() {
    uint64_t t = kHalfPeriodNs;
    for (int p = -9; p > Verilated::threadContextp()->timeprecision(); --p) t *= 10;
    return t;
}

int main(int argc, char** argv) {
    const char* trace_file = "dump.vcd";
    bool trace_on = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--trace") {
#if VM_TRACE
            trace_on = true;
#else
            std::fprintf(stderr, "Error: --trace requires the design to be built with trace support\n");
            return 1;
#endif
        } else if (arg == "--trace-file" && i + 1 < argc) {
            trace_file = argv[++i];
        }
    }
    Verilated::commandArgs(argc, argv);
    std::unique_ptr<Vtop> top(new Vtop(""));
    Verilated::fatalOnVpiError(false);  // otherwise it fails on systemtf
#if VM_TRACE
    Verilated::traceEverOn(true);
    if (trace_on) {
        tfp = new VerilatedVcdC;
        top->trace(tfp, 99);
        tfp->open(trace_file);
    }
#endif
    const uint64_t half = half_period();
    uint64_t next_edge = half;
    top->clk = 0;

    vlog_startup_routines_bootstrap();
    Verilated::addExitCb([](void*) { wrap_up(); }, nullptr);
    VerilatedVpi::callCbs(cbStartOfSimulation);
    settle_value_callbacks();

    while (!Verilated::gotFinish()) {
        // evaluate until every event of this time step is processed
        do {
            do {
                top->eval_step();
                VerilatedVpi::clearEvalNeeded();
                VerilatedVpi::doInertialPuts();
                settle_value_callbacks();
            } while (VerilatedVpi::evalNeeded());
            if (VerilatedVpi::callCbs(cbReadWriteSynch)) {
                VerilatedVpi::doInertialPuts();
                settle_value_callbacks();
            }
        } while (VerilatedVpi::evalNeeded());
        top->eval_end_step();
        VerilatedVpi::callCbs(cbReadOnlySynch);
#if VM_TRACE
        if (tfp) tfp->dump(main_time);
#endif
        // next time step: the next clock edge, cocotb's next timed callback or the design's next delay
        const uint64_t deadline = VerilatedVpi::cbNextDeadline();
        uint64_t next = std::min(next_edge, deadline);
        if (top->eventsPending()) next = std::min<uint64_t>(next, top->nextTimeSlot());
        main_time = next;
        if (main_time == next_edge) {
            top->clk = !top->clk;
            next_edge += half;
        }
        if (VerilatedVpi::callCbs(cbNextSimTime)) settle_value_callbacks();
        if (deadline <= main_time) {
            VerilatedVpi::callTimedCbs();
            settle_value_callbacks();
        }
    }
    top->final();
    wrap_up();
#if VM_TRACE
    delete tfp;
    tfp = nullptr;
#endif
    return Verilated::threadContextp()->errorCount() > 0 ? 1 : 0;
}
