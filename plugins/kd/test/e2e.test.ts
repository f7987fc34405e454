import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'chai';
import { assertNoLeak, assertOptionError, cleanup, runSteps } from '@tricks/helper-plugin-test-runner';

describe('kd in a real training run (digits: a tiny teacher, then a student)', function () {
  this.timeout(120000);
  it('loads the teacher from the teacher run dir, adds the kd term each step, leaks nothing, frees the teacher', async () => {
    const teacher = await runSteps({ steps: 4 });
    // what a run leaves alive (its trainer's model and optimizer), without kd and with it: the same if the teacher is freed
    let n = tf.memory().numTensors;
    const plain = await runSteps({ steps: 4 });
    const plainDelta = tf.memory().numTensors - n;
    n = tf.memory().numTensors;
    const run = await runSteps({ plugins: [['kd', { teacher: teacher.out, teacherBatchSize: 8 }]], steps: 4 });
    const kdDelta = tf.memory().numTensors - n;
    cleanup(plain);
    try {
      expect(Object.keys(run.trainer.ctx.lastTerms).sort()).to.deep.equal(['ce', 'kd']);
      expect(run.trainer.ctx.lastTerms.kd).to.be.greaterThan(0);
      expect(run.logger.lines.join('\n')).to.match(/kd: teacher .*model/);
      assertNoLeak(run);
      expect(kdDelta).to.equal(plainDelta);
    } finally {
      cleanup(run);
      cleanup(teacher);
    }
  });
  it('rejects a missing teacher option and a teacher dir without model.json', async () => {
    await assertOptionError('kd', {}, /teacher/);
    let err: Error | undefined;
    await runSteps({ plugins: [['kd', { teacher: '/nonexistent/teacher' }]], steps: 3 }).catch((e) => (err = e));
    expect(err?.message).to.match(/plugins.kd.teacher": no model.json/);
  });
});
