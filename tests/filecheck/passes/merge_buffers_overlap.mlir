// RUN: nnopt-opt %s -p nn-merge-buffers --split-input-file | filecheck %s
// RUN: nnopt-opt %s -p 'nn-merge-buffers{report=true}' --split-input-file 2>&1 >/dev/null | filecheck %s --check-prefix=REPORT
// RUN: nnopt-opt %s -p 'nn-merge-buffers{inplace-overlap=false}' --split-input-file | filecheck %s --check-prefix=OFF

// A 1x1 convolution from 8 to 16 channels (the VWW peak): its result starts one input
// pixel (8 B, aligned to 16) into the dying input and is written backwards, so the pair
// needs 16 + 1024 B instead of 512 + 1024 B. The buffer is shaped: each value is
// reserved only while it lives.
!q = !quant.uniform<i8:f32, 0.5:1>
!w = !quant.uniform<i8:f32, 0.25>
// CHECK-LABEL: nn.graph @pointwise
// CHECK-SAME:    b0 = #nn.buffer<size = 1040, align = 16, kind = output>
// CHECK:         %r = nn.relu %x {nn.place = #nn.place<"b0">}
// CHECK-NEXT:    %y = nn.conv2d %r, %w {nn.place = #nn.place<"b0" + 16>
// REPORT:        // nn-merge-buffers @pointwise
// REPORT-NEXT:   //   lower bound 'sram': 1,536 -> 1,040 bytes (32.3% lower)
// REPORT:        //   overlap: y (nn.conv2d, backwards) over r at +16 bytes
// OFF-LABEL:     nn.graph @pointwise
// OFF:           %y = nn.conv2d %r, %w {nn.place = #nn.place<"b2">
nn.graph @pointwise(%x: tensor<1x8x8x8x!q>) -> tensor<1x8x8x16x!q> {
  %w = nn.const dense<3> : tensor<16x1x1x8xi8> -> tensor<16x1x1x8x!w>
  %r = nn.relu %x : (tensor<1x8x8x8x!q>) -> tensor<1x8x8x8x!q>
  %y = nn.conv2d %r, %w {strides = array<i64: 1, 1>, padding = "valid"} : (tensor<1x8x8x8x!q>, tensor<16x1x1x8x!w>) -> tensor<1x8x8x16x!q>
  nn.output %y : tensor<1x8x8x16x!q>
}

// -----

// A stride-2 3x3 convolution that shrinks the tensor writes over the start of its input,
// walking forwards, once the max pool has read it: the buffer's values (the graph input
// included) move 16 bytes up to make room below.
// CHECK-LABEL: nn.graph @shrink
// CHECK-SAME:    %x: tensor<1x8x8x4xf32> {nn.place = #nn.place<"b0" + 16>}
// CHECK:         %p = nn.max_pool2d %r {nn.place = #nn.place<"b2">
// CHECK-NEXT:    %c = nn.conv2d %r, %w {nn.place = #nn.place<"b0">
// REPORT:        // nn-merge-buffers @shrink
// REPORT:        //   overlap: c (nn.conv2d, forwards) over r at -16 bytes
nn.graph @shrink(%x: tensor<1x8x8x4xf32>) -> (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) {
  %w = nn.const dense<0.5> : tensor<4x3x3x4xf32>
  %r = nn.relu %x : (tensor<1x8x8x4xf32>) -> tensor<1x8x8x4xf32>
  %p = nn.max_pool2d %r {kernel = array<i64: 2, 2>, strides = array<i64: 2, 2>, padding = "valid"} : (tensor<1x8x8x4xf32>) -> tensor<1x4x4x4xf32>
  %c = nn.conv2d %r, %w {strides = array<i64: 2, 2>, padding = "same"} : (tensor<1x8x8x4xf32>, tensor<4x3x3x4xf32>) -> tensor<1x4x4x4xf32>
  nn.output %c, %p : tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>
}
