// RUN: nnopt-opt %s --split-input-file --verify-diagnostics | filecheck %s

%a = nn.const dense<[1]> : tensor<1xi8> -> tensor<1x!quant.uniform<i8:f32, 0.0:1>>
// CHECK: types_invalid.mlir:3:{{[0-9]+}}: error: quant.uniform: scale must be positive and finite, got 0.0

// -----
%a = nn.const dense<[1]> : tensor<1xi8> -> tensor<1x!quant.uniform<i8:f32, -0.5:1>>
// CHECK: error: quant.uniform: scale must be positive and finite, got -0.5

// -----
%a = nn.const dense<[1]> : tensor<1xi8> -> tensor<1x!quant.uniform<i8:f32, 0.5:128>>
// CHECK: error: quant.uniform: zero point 128 outside storage range [-128:127]

// -----
%a = nn.const dense<[1]> : tensor<1xi8> -> tensor<1x!quant.uniform<u8:f32, 0.5:-1>>
// CHECK: error: quant.uniform: zero point -1 outside storage range [0:255]

// -----
%a = nn.const dense<[1, 2]> : tensor<2xi8> -> tensor<2x!quant.uniform<i8:f32:0, {0.5, 0.25:-200}>>
// CHECK: error: quant.uniform: zero point -200 (channel 1) outside storage range [-128:127]

// -----
%a = nn.const dense<[1]> : tensor<1xi8> -> tensor<1x!quant.uniform<i8<-129:127>:f32, 0.5>>
// CHECK: error: quant.uniform: storage range [-129:127] does not fit i8 ([-128:127])

// -----
%a = nn.const dense<[1]> : tensor<1xi8> -> tensor<1x!quant.uniform<i4:f32, 0.5>>
// CHECK: error: unsupported storage width 4 (use 8, 16 or 32)

// -----
%a = nn.const dense<[1]> : tensor<1xi8> -> tensor<1x!quant.uniform<x8:f32, 0.5>>
// CHECK: error: expected storage type such as i8 or u8, got 'x8'

// -----
%a = nn.const dense<[1]> : tensor<1xi8> -> tensor<1x!quant.uniform<i8:i32, 0.5>>
// CHECK: error: quant.uniform: expressed type must be a float type, got i32

// -----
// Per-axis scales must match the quantized dimension.
%a = nn.const dense<[1, 2, 3]> : tensor<3xi8> -> tensor<3x!quant.uniform<i8:f32:0, {0.5, 0.25}>>
// CHECK: error: 'nn.const' op result: 2 per-axis scales for dimension 0 of size 3

// -----
%a = nn.const dense<[1, 2]> : tensor<2xi8> -> tensor<2x!quant.uniform<i8:f32:1, {0.5, 0.25}>>
// CHECK: error: 'nn.const' op result: quantized dimension 1 out of range for rank 1

// -----
%a = nn.const dense<[1, 2]> : tensor<2xi8> -> tensor<2x!quant.uniform<i8:f32, 0.5
// CHECK: error: {{.*}}expected
