import { shanghaiStamp } from '../school-day';
import { CHECK_LABEL } from './patrols.constants';
import type { FindingView, RectificationTaskView } from './views';

export const SOURCE_LABEL: Record<FindingView['source'], string> = { audit: '定时巡查', round: '视频巡查', post: '护学岗' };
const TASK_STATUS_LABEL: Record<RectificationTaskView['status'], string> = { open: '未完成', closed: '已完成' };

type Table = { header: string[]; rows: (string | number)[][] };

/**
 * GET /patrol-findings/export: one line per finding, newest first — zh-CN headers and labels, the school's name,
 * Asia/Shanghai times. Text cells go through the tabular writers, which neutralise formula-like cells.
 */
export function findingExportRows(items: (FindingView & { schoolName: string | null })[]): Table {
  return {
    header: ['时间', '来源', '检查项', '学校', '对象', '问题描述', '整改任务编号'],
    rows: items.map((f) => [
      shanghaiStamp(f.at),
      SOURCE_LABEL[f.source] ?? f.source,
      CHECK_LABEL[f.check] ?? f.check,
      f.schoolName ?? '',
      f.subjectLabel,
      f.message,
      f.taskId ?? '',
    ]),
  };
}

/**
 * GET /rectification-tasks/export: one line per task, open ones first by deadline — zh-CN headers, the school's
 * name, whether it is overdue at `now`, its closing (note, evidence reference, number of photos) and the last time it
 * was sent back, Asia/Shanghai times.
 */
export function taskExportRows(items: (RectificationTaskView & { schoolName: string | null })[], now: Date): Table {
  return {
    header: [
      '编号',
      '学校',
      '检查项',
      '问题',
      '状态',
      '是否逾期',
      '发现次数',
      '下达时间',
      '整改期限',
      '完成时间',
      '整改情况',
      '整改凭证',
      '整改照片',
      '退回次数',
      '退回原因',
    ],
    rows: items.map((t) => [
      t.id,
      t.schoolName ?? '',
      CHECK_LABEL[t.check] ?? t.check,
      t.title,
      TASK_STATUS_LABEL[t.status] ?? t.status,
      t.status === 'open' && new Date(t.deadline).getTime() < now.getTime() ? '是' : '否',
      t.findingCount,
      shanghaiStamp(t.createdAt),
      shanghaiStamp(t.deadline),
      shanghaiStamp(t.closedAt),
      // An open task's closing note and evidence are those of a closing sent back: not shown as if current (attack pass 7 F3).
      t.status === 'closed' ? (t.closeNote ?? '') : '',
      t.status === 'closed' ? (t.evidenceRef ?? '') : '',
      // How many photos the closing shows (their ids: GET /rectification-tasks/:id); none for an open task, as above.
      t.status === 'closed' ? (t.closePhotoIds?.length ?? 0) : '',
      t.reopenCount,
      t.reopenReason ?? '',
    ]),
  };
}
