// moe_experts: out[t] += sum_k topk_weights[t, k] * expert_{topk_ids[t, k]}(x[t]) (+ shared(x[t])), where an
// expert is down(silu(gate(x)) * up(x)) (ops::Backend::moe_experts; the CPU version is cpu/moe_experts.cpp).
//
// A slot is one (token t, choice k), s = t * K + k. Four launches on the stream:
//   1. bucket (one warp): slots grouped by expert (a stable counting sort into perm) and cut into work items
//      of at most G slots of one expert, so each item reads its expert's weights once for all its slots.
//   2. gate_up: per item, warp w of block b computes intermediate row o = b * 4 + w of gate and up together
//      (two weight rows, one pass over x) for the item's slots: h[s, o] = silu(gate . x[t]) * (up . x[t]).
//      The shared expert's items (G consecutive tokens each) ride in the same launch, writing hs[t, o].
//   3. down: y[s, :] = down_e . h[s, :] (and ys[t, :] = shared_down . hs[t, :]), two rows per warp.
//   4. combine: out[t, j] += topk_weights[t, k] * y[t * K + k, j] over the token's slots in ascending
//      (expert id, k) order, then += ys[t, j]: the order in which the CPU adds them into out.
// Items of one launch are blockIdx.y (striding when there are more than the grid holds); routed items are
// read from device memory and blocks past the real item count do nothing.
//
// Batch invariance: every h, y and ys row is a gemv::warp_dot of one weight row with one activation row,
// whose arithmetic depends only on the reduced size (gemv.cuh), never on which slots share an item or on T;
// the combine adds a token's terms in an order fixed by that token's own ids. So a token's output has the
// same bits whatever else is in the batch.
//
// An expert id outside [0, E) is never used to read weights: its slot is left out of the buckets and the
// combine writes NaN into that token's out row (the CPU backend rejects such ids before computing).
#include <algorithm>

#include "ops/cuda/gemv.cuh"

namespace tandem::ops::cuda {
namespace {

using gemv::kThreads;
using gemv::kWarpsPerBlock;

constexpr int kDownRows = 2;         // H rows per warp in the down projection
constexpr int kCombineThreads = 256;
constexpr int64_t kMaxGridY = 65535;

/// Slots per work item: the next power of two of T, at most 8 (a token picks an expert at most once, so an
/// expert rarely has more than T slots).
int group_for(int64_t T) {
  return T <= 1 ? 1 : T <= 2 ? 2 : T <= 4 ? 4 : 8;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

/// Byte offsets of the scratch buffers, each 256-byte aligned.
struct Layout {
  size_t h = 0;        // [T * K, I] f32: silu(gate) * up per slot
  size_t y = 0;        // [T * K, H] f32: down output per slot
  size_t hs = 0;       // [T, sI] f32: shared expert's silu(gate) * up
  size_t ys = 0;       // [T, H] f32: shared expert's output
  size_t perm = 0;     // [T * K] i32: slots grouped by expert
  size_t items = 0;    // [T * K] int4: (expert, first perm index, slot count, -)
  size_t n_items = 0;  // [1] i32: routed items written
  size_t total = 0;
};

Layout layout(int64_t T, int K, const ExpertTable& experts, int64_t shared_inter) {
  const size_t slots = static_cast<size_t>(T) * static_cast<size_t>(K > 0 ? K : 0);
  const size_t H = static_cast<size_t>(experts.hidden), I = static_cast<size_t>(experts.intermediate);
  const size_t sI = static_cast<size_t>(shared_inter > 0 ? shared_inter : 0);
  Layout l;
  size_t at = 0;
  auto take = [&at](size_t bytes) {
    const size_t begin = at;
    at += (bytes + 255) / 256 * 256;
    return begin;
  };
  l.h = take(slots * I * sizeof(float));
  l.y = take(slots * H * sizeof(float));
  l.hs = take(static_cast<size_t>(T) * sI * sizeof(float));
  l.ys = take(sI > 0 ? static_cast<size_t>(T) * H * sizeof(float) : 0);
  l.perm = take(slots * sizeof(int32_t));
  l.items = take(slots * sizeof(int4));
  l.n_items = take(sizeof(int32_t));
  l.total = at;
  return l;
}

// --- 1. bucket ---------------------------------------------------------------------------------------------

/// One warp. perm lists the valid slots grouped by ascending expert, ascending slot within an expert;
/// items[i] = (expert, first perm index, count <= G, 0) for each run of up to G slots; *n_items their number.
__global__ void __launch_bounds__(32)
    moe_bucket_kernel(const int32_t* ids /*[n] expert of each slot*/, int n, int E, int G,
                      int32_t* perm /*[n]*/, int4* items /*[n]*/, int32_t* n_items /*[1]*/) {
  extern __shared__ int32_t fill[];  // [E]: slot count, then the next free position in perm
  const int lane = static_cast<int>(threadIdx.x);
  for (int e = lane; e < E; e += 32) fill[e] = 0;
  __syncwarp();
  for (int s = lane; s < n; s += 32) {
    const int e = ids[s];
    if (e >= 0 && e < E) atomicAdd(&fill[e], 1);
  }
  __syncwarp();
  int slot_base = 0, item_base = 0;
  for (int e0 = 0; e0 < E; e0 += 32) {  // exclusive scans of counts and item counts, 32 experts at a time
    const int e = e0 + lane;
    const int count = e < E ? fill[e] : 0, n_it = (count + G - 1) / G;
    int count_incl = count, items_incl = n_it;
    for (int off = 1; off < 32; off *= 2) {
      const int a = __shfl_up_sync(0xffffffffu, count_incl, off);
      const int b = __shfl_up_sync(0xffffffffu, items_incl, off);
      if (lane >= off) {
        count_incl += a;
        items_incl += b;
      }
    }
    const int slot0 = slot_base + count_incl - count, item0 = item_base + items_incl - n_it;
    if (e < E) {
      fill[e] = slot0;
      for (int i = 0; i < n_it; ++i)
        items[item0 + i] = make_int4(e, slot0 + i * G, count - i * G < G ? count - i * G : G, 0);
    }
    slot_base += __shfl_sync(0xffffffffu, count_incl, 31);
    item_base += __shfl_sync(0xffffffffu, items_incl, 31);
  }
  if (lane == 0) *n_items = item_base;
  __syncwarp();
  for (int s0 = 0; s0 < n; s0 += 32) {  // stable placement, 32 slots at a time
    const int s = s0 + lane;
    const int e = s < n ? ids[s] : -1;
    const bool valid = e >= 0 && e < E;
    const unsigned peers = __match_any_sync(0xffffffffu, valid ? e : -1);
    const int rank = __popc(peers & ((1u << lane) - 1u));
    if (valid) perm[fill[e] + rank] = s;
    __syncwarp();
    if (valid && rank == 0) fill[e] += __popc(peers);
    __syncwarp();
  }
}

// --- work items ----------------------------------------------------------------------------------------------

/// The routed items of a launch (routed_items == 0: none in this launch).
struct Routed {
  const int32_t* perm = nullptr;     // [T * K] slots grouped by expert
  const int4* items = nullptr;       // [routed_items]
  const int32_t* n_items = nullptr;  // [1] items actually written (<= routed_items)
  int64_t routed_items = 0;          // grid bound
};

/// Item `it` of a launch: routed items first, then shared_items shared-expert items of G tokens each.
/// Member j of the item is activation row `row(j)`: a slot (routed) or a token (shared).
struct Item {
  bool valid = false;
  bool shared = false;
  int expert = 0;
  int n = 0;
  const int32_t* slots = nullptr;  // routed: [n] slots
  int64_t t_begin = 0;             // shared: first token
  __device__ int64_t row(int j) const { return shared ? t_begin + j : slots[j]; }
};

template <int GMAX>
__device__ Item item_at(const Routed& r, int n_routed, int64_t it, int64_t T) {
  Item item;
  if (it < r.routed_items) {
    if (it >= n_routed) return item;
    const int4 v = r.items[it];
    item.expert = v.x;
    item.slots = r.perm + v.y;
    item.n = v.z;
  } else {
    item.shared = true;
    item.t_begin = (it - r.routed_items) * GMAX;
    item.n = static_cast<int>(T - item.t_begin < GMAX ? T - item.t_begin : GMAX);
  }
  item.valid = true;
  return item;
}

// --- 2. gate and up ------------------------------------------------------------------------------------------

struct GateUpArgs {
  const float* x = nullptr;  // [T, H]
  int64_t T = 0;
  int K = 0;
  int64_t H = 0;
  const DeviceLinear* gate = nullptr;  // [E] device array, each [I, H]
  const DeviceLinear* up = nullptr;    // [E] device array, each [I, H]
  Routed routed;
  float* h = nullptr;  // [T * K, I]
  int64_t I = 0;
  DeviceLinear shared_gate, shared_up;  // [sI, H] each, when shared_items > 0
  int64_t shared_items = 0;
  float* hs = nullptr;  // [T, sI]
};

template <Elem E, int GMAX>
__global__ void __launch_bounds__(kThreads, gemv::min_blocks_for_group(GMAX))
    moe_gate_up_kernel(GateUpArgs a) {
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const int64_t o = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp;  // this warp's intermediate row
  const int n_routed = a.routed.routed_items > 0 ? *a.routed.n_items : 0;
  const int H = static_cast<int>(a.H);
  for (int64_t it = blockIdx.y; it < a.routed.routed_items + a.shared_items; it += gridDim.y) {
    const Item item = item_at<GMAX>(a.routed, n_routed, it, a.T);
    if (!item.valid) continue;
    int64_t h_ld;  // I of the item's expert
    gemv::Rows<2> rows;
    gemv::Epilogue ep_gate, ep_up;
    bool w_vec;
    {
      const DeviceLinear gate = item.shared ? a.shared_gate : a.gate[item.expert];
      const DeviceLinear up = item.shared ? a.shared_up : a.up[item.expert];
      h_ld = gate.out;
      if (o >= h_ld) continue;  // the whole warp
      gemv::set_row(rows, 0, gate, o);
      gemv::set_row(rows, 1, up, o);
      ep_gate = gemv::epilogue(gate, o);
      ep_up = gemv::epilogue(up, o);
      w_vec = gemv::rows_vectorizable(gate) && gemv::rows_vectorizable(up);
    }
    const bool x_vec = w_vec && gemv::x_vectorizable(a.x, H);
    // This lane stores the result of item member `lane`.
    float* dst = lane < item.n ? (item.shared ? a.hs : a.h) + item.row(lane) * h_ld + o : nullptr;
    gemv::with_group<GMAX>(item.n, [&](auto group) {
      constexpr int G = decltype(group)::value;
      const float* xr[G];  // each [H]; members past n repeat the last (computed, never stored)
#pragma unroll
      for (int j = 0; j < G; ++j) {
        const int64_t r = item.row(j < item.n ? j : item.n - 1);
        xr[j] = a.x + (item.shared ? r : r / a.K) * a.H;
      }
      float acc[2][G];
      gemv::warp_dot<E, 2, G>(rows, xr, H, w_vec, x_vec, acc);
      const float g = gemv::finish(ep_gate, gemv::pick<2, G>(acc, lane));
      const float u = gemv::finish(ep_up, gemv::pick<2, G>(acc, G + lane));
      if (dst) *dst = gemv::silu_mul(g, u);
    });
  }
}

// --- 3. down -------------------------------------------------------------------------------------------------

struct DownArgs {
  int64_t T = 0;
  int64_t H = 0;
  const DeviceLinear* down = nullptr;  // [E] device array, each [H, I]
  Routed routed;
  const float* h = nullptr;  // [T * K, I]
  float* y = nullptr;        // [T * K, H]
  DeviceLinear shared_down;  // [H, sI], when shared_items > 0
  int64_t shared_items = 0;
  const float* hs = nullptr;  // [T, sI]
  float* ys = nullptr;        // [T, H]
};

template <Elem E, int GMAX>
__global__ void __launch_bounds__(kThreads, gemv::min_blocks_for_group(GMAX))
    moe_down_kernel(DownArgs a) {
  const int warp = static_cast<int>(threadIdx.x / 32), lane = static_cast<int>(threadIdx.x % 32);
  const int64_t o0 = (static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + warp) * kDownRows;
  if (o0 >= a.H) return;  // the whole warp; no block-level synchronisation below
  const int n_routed = a.routed.routed_items > 0 ? *a.routed.n_items : 0;
  for (int64_t it = blockIdx.y; it < a.routed.routed_items + a.shared_items; it += gridDim.y) {
    const Item item = item_at<GMAX>(a.routed, n_routed, it, a.T);
    if (!item.valid) continue;
    const float* h = item.shared ? a.hs : a.h;  // [rows, in]
    int in;
    gemv::Rows<kDownRows> rows;
    gemv::Epilogue ep;
    bool w_vec;
    {
      const DeviceLinear down = item.shared ? a.shared_down : a.down[item.expert];
      in = static_cast<int>(down.in);
      rows = gemv::rows_of<kDownRows>(down, o0);
      w_vec = gemv::rows_vectorizable(down);
      ep = gemv::epilogue(down, o0 + lane % kDownRows < a.H ? o0 + lane % kDownRows : a.H - 1);
    }
    const bool x_vec = w_vec && gemv::x_vectorizable(h, in);
    gemv::with_group<GMAX>(item.n, [&](auto group) {
      constexpr int G = decltype(group)::value;
      const float* xr[G];  // each [in]
#pragma unroll
      for (int j = 0; j < G; ++j) xr[j] = h + item.row(j < item.n ? j : item.n - 1) * in;
      float acc[kDownRows][G];
      gemv::warp_dot<E, kDownRows, G>(rows, xr, in, w_vec, x_vec, acc);
      // Lane i stores row o0 + i % kDownRows of member i / kDownRows.
      const int r = lane % kDownRows, t = lane / kDownRows;
      const float dot = gemv::pick<kDownRows, G>(acc, r * G + t);
      float* y = item.shared ? a.ys : a.y;  // [rows, H]
      if (t < item.n && o0 + r < a.H) y[item.row(t) * a.H + o0 + r] = gemv::finish(ep, dot);
    });
  }
}

// --- 4. combine ----------------------------------------------------------------------------------------------

/// out[t, j] += w[t, k] * y[t * K + k, j] for k in ascending (id, k) order, then += ys[t, j]. NaN for a token
/// with an id outside [0, E).
__global__ void __launch_bounds__(kCombineThreads)
    moe_combine_kernel(const int32_t* ids /*[T, K]*/, const float* weights /*[T, K]*/, int64_t T, int K, int E,
                       int64_t H, const float* y /*[T * K, H]*/, const float* ys /*[T, H] or null*/,
                       float* out /*[T, H]*/) {
  extern __shared__ int32_t smem[];
  int32_t* id_s = smem;       // [K] the token's expert ids
  int32_t* order = smem + K;  // [K] its k sorted by (id, k)
  const int64_t j = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (int64_t t = blockIdx.y; t < T; t += gridDim.y) {
    __syncthreads();  // the previous token's order is no longer read
    for (int k = static_cast<int>(threadIdx.x); k < K; k += blockDim.x) id_s[k] = ids[t * K + k];
    __syncthreads();
    for (int k = static_cast<int>(threadIdx.x); k < K; k += blockDim.x) {
      int rank = 0;
      for (int k2 = 0; k2 < K; ++k2) rank += id_s[k2] < id_s[k] || (id_s[k2] == id_s[k] && k2 < k);
      order[rank] = k;
    }
    __syncthreads();
    if (j < H) {
      float o = out[t * H + j];
      for (int i = 0; i < K; ++i) {
        const int k = order[i], e = id_s[k];
        o = e >= 0 && e < E ? __fadd_rn(o, __fmul_rn(weights[t * K + k], y[(t * K + k) * H + j]))
                            : __int_as_float(0x7fc00000);
      }
      if (ys) o = __fadd_rn(o, ys[t * H + j]);
      out[t * H + j] = o;
    }
  }
}

// --- launchers -----------------------------------------------------------------------------------------------

template <Elem E>
void launch_gate_up(int G, dim3 grid, const GateUpArgs& a, cudaStream_t stream) {
  switch (G) {
    case 1: moe_gate_up_kernel<E, 1><<<grid, kThreads, 0, stream>>>(a); break;
    case 2: moe_gate_up_kernel<E, 2><<<grid, kThreads, 0, stream>>>(a); break;
    case 4: moe_gate_up_kernel<E, 4><<<grid, kThreads, 0, stream>>>(a); break;
    default: moe_gate_up_kernel<E, 8><<<grid, kThreads, 0, stream>>>(a); break;
  }
}

template <Elem E>
void launch_down(int G, dim3 grid, const DownArgs& a, cudaStream_t stream) {
  switch (G) {
    case 1: moe_down_kernel<E, 1><<<grid, kThreads, 0, stream>>>(a); break;
    case 2: moe_down_kernel<E, 2><<<grid, kThreads, 0, stream>>>(a); break;
    case 4: moe_down_kernel<E, 4><<<grid, kThreads, 0, stream>>>(a); break;
    default: moe_down_kernel<E, 8><<<grid, kThreads, 0, stream>>>(a); break;
  }
}

void gate_up(Elem elem, int G, const GateUpArgs& a, int64_t rows, cudaStream_t stream) {
  const int64_t n_items = a.routed.routed_items + a.shared_items;
  if (n_items == 0 || rows <= 0) return;
  const dim3 grid(static_cast<unsigned>(ceil_div(rows, kWarpsPerBlock)),
                  static_cast<unsigned>(n_items < kMaxGridY ? n_items : kMaxGridY));
  switch (elem) {
    case Elem::kF32: launch_gate_up<Elem::kF32>(G, grid, a, stream); break;
    case Elem::kBF16: launch_gate_up<Elem::kBF16>(G, grid, a, stream); break;
    case Elem::kF16: launch_gate_up<Elem::kF16>(G, grid, a, stream); break;
    case Elem::kF8E4M3: launch_gate_up<Elem::kF8E4M3>(G, grid, a, stream); break;
  }
}

void down(Elem elem, int G, const DownArgs& a, cudaStream_t stream) {
  const int64_t n_items = a.routed.routed_items + a.shared_items;
  if (n_items == 0 || a.H <= 0) return;
  const dim3 grid(static_cast<unsigned>(ceil_div(a.H, kWarpsPerBlock * kDownRows)),
                  static_cast<unsigned>(n_items < kMaxGridY ? n_items : kMaxGridY));
  switch (elem) {
    case Elem::kF32: launch_down<Elem::kF32>(G, grid, a, stream); break;
    case Elem::kBF16: launch_down<Elem::kBF16>(G, grid, a, stream); break;
    case Elem::kF16: launch_down<Elem::kF16>(G, grid, a, stream); break;
    case Elem::kF8E4M3: launch_down<Elem::kF8E4M3>(G, grid, a, stream); break;
  }
}

}  // namespace

size_t moe_experts_scratch_bytes(int64_t T, int K, const ExpertTable& experts, int64_t shared_intermediate) {
  return layout(T, K, experts, shared_intermediate).total;
}

cudaError_t moe_experts(const float* x, int64_t T, const int32_t* topk_ids, const float* topk_weights, int K,
                        const ExpertTable& experts, const DeviceLinear* shared_gate, const DeviceLinear* shared_up,
                        const DeviceLinear* shared_down, float* out, void* scratch, cudaStream_t stream) {
  const bool shared = shared_gate && shared_up && shared_down;
  if (T <= 0 || experts.hidden <= 0 || (K <= 0 && !shared)) return cudaSuccess;
  if (shared && shared_up->elem != shared_gate->elem) return cudaErrorInvalidValue;  // read as row pairs
  const int64_t H = experts.hidden, I = experts.intermediate, E = experts.n_experts;
  const int64_t sI = shared ? shared_gate->out : 0;
  const int64_t slots = T * (K > 0 ? K : 0);
  const Layout l = layout(T, K, experts, sI);
  char* base = static_cast<char*>(scratch);
  float* h = reinterpret_cast<float*>(base + l.h);              // [T * K, I]
  float* y = reinterpret_cast<float*>(base + l.y);              // [T * K, H]
  float* hs = reinterpret_cast<float*>(base + l.hs);            // [T, sI]
  float* ys = reinterpret_cast<float*>(base + l.ys);            // [T, H]
  int32_t* perm = reinterpret_cast<int32_t*>(base + l.perm);    // [T * K]
  int4* items = reinterpret_cast<int4*>(base + l.items);        // [T * K]
  int32_t* n_items = reinterpret_cast<int32_t*>(base + l.n_items);  // [1]

  const int G = group_for(T);
  Routed routed;
  if (slots > 0 && E > 0 && I > 0) {
    routed = {.perm = perm, .items = items, .n_items = n_items,
              .routed_items = std::min(slots, ceil_div(slots, G) + std::min(E, slots))};
    moe_bucket_kernel<<<1, 32, static_cast<size_t>(E) * sizeof(int32_t), stream>>>(
        topk_ids, static_cast<int>(slots), static_cast<int>(E), G, perm, items, n_items);
  }
  const int64_t shared_items = shared ? ceil_div(T, G) : 0;

  // Phase 1. The shared expert joins the routed launch when its weights have the same element type.
  GateUpArgs gu{.x = x, .T = T, .K = K, .H = H, .gate = experts.gate, .up = experts.up, .routed = routed,
                .h = h, .I = I, .shared_gate = {}, .shared_up = {}, .shared_items = 0, .hs = hs};
  const bool fuse_gate_up = shared && shared_gate->elem == experts.elem;
  if (fuse_gate_up) {
    gu.shared_gate = *shared_gate;
    gu.shared_up = *shared_up;
    gu.shared_items = shared_items;
  }
  gate_up(experts.elem, G, gu, std::max(I, fuse_gate_up ? sI : int64_t{0}), stream);
  if (shared && !fuse_gate_up) {
    GateUpArgs s{.x = x, .T = T, .K = K, .H = H, .gate = nullptr, .up = nullptr, .routed = {}, .h = h, .I = I,
                 .shared_gate = *shared_gate,
                 .shared_up = *shared_up, .shared_items = shared_items, .hs = hs};
    gate_up(shared_gate->elem, G, s, sI, stream);
  }

  // Phase 2.
  DownArgs dn{.T = T, .H = H, .down = experts.down, .routed = routed, .h = h, .y = y, .shared_down = {},
              .shared_items = 0, .hs = hs, .ys = ys};
  const bool fuse_down = shared && shared_down->elem == experts.elem;
  if (fuse_down) {
    dn.shared_down = *shared_down;
    dn.shared_items = shared_items;
  }
  down(experts.elem, G, dn, stream);
  if (shared && !fuse_down) {
    DownArgs s{.T = T, .H = H, .down = nullptr, .routed = {}, .h = h, .y = y, .shared_down = *shared_down,
               .shared_items = shared_items,
               .hs = hs, .ys = ys};
    down(shared_down->elem, G, s, stream);
  }

  // Phase 3.
  const dim3 grid(static_cast<unsigned>(ceil_div(H, kCombineThreads)),
                  static_cast<unsigned>(T < kMaxGridY ? T : kMaxGridY));
  const int Kc = K > 0 ? K : 0;
  moe_combine_kernel<<<grid, kCombineThreads, 2 * static_cast<size_t>(Kc) * sizeof(int32_t), stream>>>(
      topk_ids, topk_weights, T, Kc, static_cast<int>(E), H, y, shared ? ys : nullptr, out);
  return cudaGetLastError();
}

}  // namespace tandem::ops::cuda
