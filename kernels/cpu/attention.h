// Causal multi-head self-attention for one tensor-parallel rank, optional sliding window.
//
// Sizes: B = batch, T = seq (positions), C = channels (C_local: this rank's share of d_model),
// hd = head_dim, nh = C / hd local heads. Scale 1/sqrt(hd). Window W: 0 = full causal; W > 0:
// query t attends keys max(0, t-W+1)..t (W >= T is the same as full causal).
//
// qkv [B, T, 3C] in storage type T (float, bf16, f16), laid out as the GPT-2 checkpoint's QKV
// projection output for this rank: Q for all local heads in columns [0, C), K in [C, 2C), V in
// [2C, 3C); local head h owns columns h*hd..(h+1)*hd-1 of each. out [B, T, C]: the heads'
// outputs concatenated in the same order.
//
// Memory: the [B, nh, T, T] probabilities are never stored. The forward saves the row
// log-sum-exp lse [B, nh, T] (fp32, natural log, of the scaled scores) and the backward
// recomputes the scores from qkv and lse (flash-attention style), one (b, h) per thread with an
// O(T * hd) fp32 scratch (backward: about 7 T hd floats, 0.5 MiB at T = 256, hd = 64).
//
// Math in fp32 (storage converted on load, rounded to nearest even on store). OpenMP threads
// share the B * nh (batch, head) pairs.
#pragma once

#include <cstdint>

namespace kdgrid::cpu {

// out [B, T, C] = softmax(mask(Q K^T / sqrt(hd))) V per head (overwritten).
// lse [B, nh, T] fp32 (overwritten): log sum_j exp(s_ij) with s the scaled scores; may be
// nullptr when no backward follows (evaluation).
template <typename T>
void attentionForward(T* out, float* lse, const T* qkv, int64_t batch, int64_t seq,
                      int64_t channels, int64_t head_dim, int64_t window);

// dqkv [B, T, 3C] (overwritten) = d loss / d qkv, given dout [B, T, C] = d loss / d out and the
// forward's qkv and lse. With P the probabilities (recomputed as exp(S - lse)), dV = P^T dO,
// dP = dO V^T, dS = P * (dP - D), dQ = scale dS K, dK = scale dS^T Q, where
// D_i = rowsum(dO_i * O_i) is formed as sum_j P_ij dP_ij in fp32: the forward's output is not
// needed, and its storage rounding (bf16: 2^-9) does not enter the gradient.
template <typename T>
void attentionBackward(T* dqkv, const T* dout, const T* qkv, const float* lse, int64_t batch,
                       int64_t seq, int64_t channels, int64_t head_dim, int64_t window);

}  // namespace kdgrid::cpu
