<?php
// A panel deletion job (GET /api/v1/deletions/{job}) told in the admin's words: where it stands, why it failed.

namespace Opterius\Whmcs;

final class DeletionJob
{
    /** "Deletion failed at home_directory: …; run Terminate again to resume (panel deletion job 17)." */
    public static function failed(array $job): string
    {
        $failed = [];
        foreach ($job['steps'] ?? [] as $step)
            if ($step['status'] === 'failed') $failed[] = $step['resource'] . ': ' . ($step['detail'] ?? 'no detail');
        // Every step done, but the verification after the last one found something left.
        if (!$failed)
            foreach ($job['verification']['resources'] ?? [] as $check)
                if (($check['status'] ?? '') !== 'gone') $failed[] = $check['resource'] . ': ' . ($check['summary'] ?? $check['status']);
        return 'Deletion failed at ' . ($failed ? implode('; ', $failed) : 'an unnamed step')
            . "; run Terminate again to resume (panel deletion job {$job['id']}).";
    }

    public static function stillRunning(array $job, float $budget): string
    {
        return "The deletion is still running on the panel after {$budget} s (deletion job {$job['id']}, " . self::where($job)
            . "). Run Terminate again (or let the next automation run do it): it joins job {$job['id']} and succeeds once the deletion has finished.";
    }

    /** "now at home_directory: removed 1,024 of 40,000 files", or where a running job stands. */
    public static function where(array $job): string
    {
        foreach (['running', 'pending'] as $status)
            foreach ($job['steps'] ?? [] as $step)
                if ($step['status'] === $status)
                    return "now at {$step['resource']}" . (!empty($step['detail']) && $status === 'running' ? ": {$step['detail']}" : '');
        return 'verifying that nothing is left';
    }
}
