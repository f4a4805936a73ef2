// A small quantized block: `make demo` canonicalizes it (the back-to-back
// reshapes and transposes fold away) and removes duplicates with CSE.
nn.graph @demo(%x: tensor<1x8x8x4xf32> {nn.name = "image"}) -> (tensor<1x4xf32> {nn.name = "scores"}) {
  %q = nn.quantize %x : (tensor<1x8x8x4xf32>) -> tensor<1x8x8x4x!quant.uniform<i8:f32, 0.05:-3>>
  %w = nn.const dense<[[[[1, -1, 2, 0]]], [[[2, 3, -4, 1]]], [[[0, 0, 1, 1]]], [[[5, -5, 5, -5]]]]> : tensor<4x1x1x4xi8> -> tensor<4x1x1x4x!quant.uniform<i8<-127:127>:f32:0, {0.01,0.02,0.015,0.005}>>
  %c = nn.conv2d %q, %w {strides = array<i64: 1, 1>, padding = "same", fused_activation = "relu", rounding = "tflite_double"} : (tensor<1x8x8x4x!quant.uniform<i8:f32, 0.05:-3>>, tensor<4x1x1x4x!quant.uniform<i8<-127:127>:f32:0, {0.01,0.02,0.015,0.005}>>) -> tensor<1x8x8x4x!quant.uniform<i8:f32, 0.1:-128>>
  %t1 = nn.transpose %c {perm = array<i64: 0, 3, 1, 2>} : (tensor<1x8x8x4x!quant.uniform<i8:f32, 0.1:-128>>) -> tensor<1x4x8x8x!quant.uniform<i8:f32, 0.1:-128>>
  %t2 = nn.transpose %t1 {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x4x8x8x!quant.uniform<i8:f32, 0.1:-128>>) -> tensor<1x8x8x4x!quant.uniform<i8:f32, 0.1:-128>>
  %p1 = nn.avg_pool2d %t2 {kernel = array<i64: 8, 8>, strides = array<i64: 8, 8>, padding = "valid"} : (tensor<1x8x8x4x!quant.uniform<i8:f32, 0.1:-128>>) -> tensor<1x1x1x4x!quant.uniform<i8:f32, 0.1:-128>>
  %p2 = nn.avg_pool2d %t2 {kernel = array<i64: 8, 8>, strides = array<i64: 8, 8>, padding = "valid"} : (tensor<1x8x8x4x!quant.uniform<i8:f32, 0.1:-128>>) -> tensor<1x1x1x4x!quant.uniform<i8:f32, 0.1:-128>>
  %s = nn.add %p1, %p2 : (tensor<1x1x1x4x!quant.uniform<i8:f32, 0.1:-128>>, tensor<1x1x1x4x!quant.uniform<i8:f32, 0.1:-128>>) -> tensor<1x1x1x4x!quant.uniform<i8:f32, 0.2:-128>>
  %r1 = nn.reshape %s : (tensor<1x1x1x4x!quant.uniform<i8:f32, 0.2:-128>>) -> tensor<1x1x4x!quant.uniform<i8:f32, 0.2:-128>>
  %r2 = nn.reshape %r1 : (tensor<1x1x4x!quant.uniform<i8:f32, 0.2:-128>>) -> tensor<1x4x!quant.uniform<i8:f32, 0.2:-128>>
  %y = nn.dequantize %r2 : (tensor<1x4x!quant.uniform<i8:f32, 0.2:-128>>) -> tensor<1x4xf32>
  nn.output %y : tensor<1x4xf32>
}
