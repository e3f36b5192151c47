// Compiled into every executable of a sanitizer build (TANDEM_SANITIZE / TANDEM_TSAN): the run-time options
// the sanitizers read at start-up, so every test and every server a test starts stops at the first report and
// fails the test that caused it (docs/reliability.md), without depending on the environment it runs in.
extern "C" {
#if TANDEM_SANITIZE_ADDRESS
const char* __asan_default_options() { return "detect_leaks=1:check_initialization_order=1:strict_init_order=1"; }
const char* __ubsan_default_options() { return "print_stacktrace=1:halt_on_error=1"; }
#endif
#if TANDEM_SANITIZE_THREAD
const char* __tsan_default_options() { return "halt_on_error=1:second_deadlock_stack=1"; }
#endif
}
