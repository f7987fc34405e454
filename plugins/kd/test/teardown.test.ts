import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { cleanup, failAfterEpoch, FixtureFailure, runFailing, runSteps } from '@tricks/helper-plugin-test-runner';

describe('kd and teardown', function () {
  this.timeout(120000);
  it('a run that fails after epoch 1 frees the teacher (teardown runs on every exit)', async () => {
    const teacher = await runSteps({ steps: 4 });
    // what a failed run leaves alive (its model and optimizer), without kd and with it: the same if the teacher is freed
    let n = tf.memory().numTensors;
    const plain = await runFailing({ builtins: [failAfterEpoch(1)], config: { epochs: 2 } });
    const plainDelta = tf.memory().numTensors - n;
    n = tf.memory().numTensors;
    const run = await runFailing({ plugins: [['kd', { teacher: teacher.out }]], builtins: [failAfterEpoch(1)], config: { epochs: 2 } });
    const kdDelta = tf.memory().numTensors - n;
    try {
      expect(run.error).to.be.instanceOf(FixtureFailure);
      expect(run.logger.lines.join('\n')).to.match(/kd: teacher/);
      expect(kdDelta).to.equal(plainDelta);
    } finally {
      cleanup(plain);
      cleanup(run);
      cleanup(teacher);
    }
  });
});
