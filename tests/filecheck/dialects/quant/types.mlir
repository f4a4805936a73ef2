// RUN: nnopt-opt %s | nnopt-opt | filecheck %s
// RUN: nnopt-opt %s --print-op-generic | nnopt-opt | filecheck %s

// Per-tensor, zero point omitted when 0, MLIR's syntax.
// CHECK: tensor<4x!quant.uniform<i8:f32, 0.0235:-12>>
%a = nn.const dense<[1, 2, 3, 4]> : tensor<4xi8> -> tensor<4x!quant.uniform<i8:f32, 0.0235:-12>>
// CHECK: tensor<4x!quant.uniform<i8:f32, 0.5>>
%b = nn.const dense<[1, 2, 3, 4]> : tensor<4xi8> -> tensor<4x!quant.uniform<i8:f32, 0.5:0>>
// Unsigned storage with a narrowed storage range.
// CHECK: tensor<4x!quant.uniform<u8<1:255>:f32, 0.25:128>>
%c = nn.const dense<[1, 2, 3, 4]> : tensor<4xi8> -> tensor<4x!quant.uniform<u8<1:255>:f32, 0.25:128>>
// Narrow signed range as the TFLite spec uses for weights.
// CHECK: tensor<4x!quant.uniform<i8<-127:127>:f32, 0.125>>
%d = nn.const dense<[1, 2, 3, 4]> : tensor<4xi8> -> tensor<4x!quant.uniform<i8<-127:127>:f32, 0.125>>
// i16 and i32 storage.
// CHECK: tensor<4x!quant.uniform<i16:f32, 3.0517578125e-05>>
%e = nn.const dense<[1, 2, 3, 4]> : tensor<4xi16> -> tensor<4x!quant.uniform<i16:f32, 3.0517578125e-05>>
// CHECK: tensor<4x!quant.uniform<i32:f32, 0.0001>>
%f = nn.const dense<[1, 2, 3, 4]> : tensor<4xi32> -> tensor<4x!quant.uniform<i32:f32, 1.0e-4>>
// Per-axis, scales printed exactly (float32 scales survive the round trip).
// CHECK: tensor<3x2x!quant.uniform<i8:f32:0, {0.0235294122248888,0.5:1,2.0e-05:-1}>>
%g = nn.const dense<[[1, 2], [3, 4], [5, 6]]> : tensor<3x2xi8> -> tensor<3x2x!quant.uniform<i8:f32:0, {0.0235294122248888, 0.5:1, 2.0e-5:-1}>>
// Integer scale literals are accepted, as MLIR does.
// CHECK: tensor<2x!quant.uniform<i8:f32, 2.0:3>>
%h = nn.const dense<[1, 2]> : tensor<2xi8> -> tensor<2x!quant.uniform<i8:f32, 2:3>>
// Other expressed types.
// CHECK: tensor<2x!quant.uniform<i8:f16, 0.5>>
%i = nn.const dense<[1, 2]> : tensor<2xi8> -> tensor<2x!quant.uniform<i8:f16, 0.5>>
